// seqlab's web page: chat, translate, the cross-attention heatmap, and self-attention step by step.
// Plain JavaScript against the server's own API (/v1/models, /v1/chat, /v1/translate, /v1/explain).
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let conversationId = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "style") node.style.cssText = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const fmt = (x) => (x === null ? "−∞" : x.toFixed(3));

async function postJSON(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await res.json();
  if (!res.ok) throw new Error(data.error ? data.error.message : res.statusText);
  return data;
}

// POST and read server-sent events; onEvent gets each parsed `data:` object until [DONE].
async function postSSE(path, body, onEvent) {
  const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...body, stream: true }) });
  if (!res.ok) {
    const data = await res.json();
    throw new Error(data.error ? data.error.message : res.statusText);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event.replace(/^data: /, "");
      if (data === "[DONE]") return;
      const parsed = JSON.parse(data);
      if (parsed.error) throw new Error(parsed.error.message);
      onEvent(parsed);
    }
  }
}

// ------------------------------------------------------------------ tabs and models

function showTab(name) {
  document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".panel").forEach((p) => p.classList.toggle("active", p.id === `tab-${name}`));
}

async function loadModels() {
  const res = await fetch("/v1/models");
  models = (await res.json()).data;
  for (const select of document.querySelectorAll(".model-select")) {
    const prefer = select.id === "chat-model" ? "chatbot" : "translator";
    const ordered = [...models.filter((m) => m.kind === prefer), ...models.filter((m) => m.kind !== prefer)];
    select.replaceChildren(...ordered.map((m) => el("option", { value: m.id }, `${m.id} (${m.kind})`)));
  }
  $("status").textContent = `${models.length} model${models.length === 1 ? "" : "s"} loaded`;
  syncLayerHead($("sa-model").value, $("sa-layer"), $("sa-head"), $("sa-side").value);
  syncLayerHead($("tr-model").value, $("hm-layer"), $("hm-head"), "cross");
}

function range(n) { return [...Array(n).keys()]; }

function syncLayerHead(modelName, layerSelect, headSelect, side) {
  const m = models.find((x) => x.id === modelName);
  if (!m || m.architecture !== "transformer") return;
  const layers = side === "encoder" ? m.layers : m.decoder_layers;
  const keep = (select, n) => {
    const old = Number(select.value) || 0;
    select.replaceChildren(...range(n).map((i) => el("option", { value: i }, i)));
    select.value = String(Math.min(old, n - 1));
  };
  keep(layerSelect, layers);
  keep(headSelect, m.heads);
}

// ------------------------------------------------------------------ chat

async function sendChat(event) {
  event.preventDefault();
  const message = $("chat-input").value.trim();
  if (!message) return;
  $("chat-input").value = "";
  const log = $("chat-log");
  log.append(el("div", { class: "msg user" }, message));
  const bubble = el("div", { class: "msg bot" });
  log.append(bubble);
  const body = { model: $("chat-model").value, message };
  if (conversationId) body.conversation_id = conversationId;
  try {
    await postSSE("/v1/chat", body, (e) => {
      if (e.text !== undefined) bubble.textContent += e.text;
      if (e.done) { conversationId = e.conversation_id; bubble.textContent = e.reply; bubble.classList.add("done"); }
    });
  } catch (err) {
    bubble.classList.add("error");
    bubble.textContent = err.message;
  }
  log.scrollTop = log.scrollHeight;
}

// ------------------------------------------------------------------ translate and heatmap

let lastTranslation = null;  // {model, text, translation}

async function sendTranslate(event) {
  event.preventDefault();
  const text = $("tr-input").value.trim();
  if (!text) return;
  const out = $("tr-output");
  out.textContent = "";
  out.classList.remove("error", "done");
  const body = { model: $("tr-model").value, texts: [text], beam: Number($("tr-beam").value) || 1 };
  try {
    await postSSE("/v1/translate", body, (e) => {
      if (e.text !== undefined) out.textContent += e.text;
      if (e.done) out.textContent = e.translation;
    });
    out.classList.add("done");
    lastTranslation = { model: body.model, text, translation: out.textContent };
    await drawHeatmap();
  } catch (err) {
    out.classList.add("error");
    out.textContent = err.message;
  }
}

async function drawHeatmap() {
  if (!lastTranslation) return;
  const target = $("heatmap");
  const m = models.find((x) => x.id === lastTranslation.model);
  if (!m || m.architecture !== "transformer") {
    target.replaceChildren(el("p", { class: "muted" }, "Heatmaps of every layer and head need a Transformer run."));
    return;
  }
  const data = await postJSON("/v1/explain", {
    model: lastTranslation.model, text: lastTranslation.text, translation: lastTranslation.translation,
    side: "cross", layer: Number($("hm-layer").value), head: Number($("hm-head").value),
  });
  const table = el("table", { class: "grid heatmap", "data-layer": data.layer, "data-head": data.head });
  table.append(el("tr", {}, el("th"), ...data.key_tokens.map((t) => el("th", { class: "col" }, t))));
  data.weights.forEach((row, i) => {
    const cells = row.map((w) => el("td", { title: w.toFixed(4), style: `background: rgba(47,111,178,${w.toFixed(3)}); color: ${w > 0.5 ? "#fff" : "#1d232b"}` }, w.toFixed(2)));
    table.append(el("tr", {}, el("th", {}, `${data.query_tokens[i]} → ${data.predicted[i]}`), ...cells));
  });
  target.replaceChildren(table);
}

// ------------------------------------------------------------------ self-attention step by step

let explained = null;
let picked = 0;

async function loadSteps(event) {
  if (event) event.preventDefault();
  const steps = $("sa-steps");
  try {
    explained = await postJSON("/v1/explain", {
      model: $("sa-model").value, text: $("sa-input").value, side: $("sa-side").value,
      layer: Number($("sa-layer").value), head: Number($("sa-head").value),
    });
  } catch (err) {
    steps.replaceChildren(el("p", { class: "error" }, err.message));
    return;
  }
  $("sa-translation").textContent = `Model's translation: ${explained.translation}`;
  picked = Math.min(picked, explained.query_tokens.length - 1);
  drawTokens();
  drawSteps();
}

function drawTokens() {
  const buttons = explained.query_tokens.map((t, i) => {
    const b = el("button", { type: "button", class: i === picked ? "picked" : "", "data-index": i }, t);
    b.addEventListener("click", () => { picked = i; drawTokens(); drawSteps(); });
    return b;
  });
  $("sa-tokens").replaceChildren(el("span", { class: "muted" }, "Query word: "), ...buttons);
}

function vector(values) { return el("div", { class: "vec" }, `[${values.map(fmt).join(", ")}]`); }

function step(n, title, ...content) {
  return el("div", { class: "step", "data-step": n }, el("h3", {}, `${n}. ${title}`), ...content);
}

function drawSteps() {
  const e = explained;
  const i = picked;
  const word = e.query_tokens[i];
  const keyTable = (header, values, extra) => {
    const table = el("table", { class: "grid" });
    table.append(el("tr", {}, el("th", {}, "key word"), ...e.key_tokens.map((t) => el("th", {}, t))));
    table.append(el("tr", {}, el("th", {}, header), ...values.map((x) => el("td", { class: x === null ? "masked" : "" }, fmt(x)))));
    if (extra) table.append(extra);
    return table;
  };
  const weights = e.weights[i];
  const bars = el("tr", {}, el("th", {}, ""), ...weights.map((w) => el("td", {}, el("span", { class: "bar", style: `width: ${Math.round(w * 40)}px` }))));
  const valueRows = el("table", { class: "grid values" },
    el("tr", {}, el("th", {}, "key word"), el("th", {}, "a_ij"), el("th", {}, "value v_j")),
    ...e.key_tokens.map((t, j) => el("tr", {}, el("th", {}, t), el("td", {}, fmt(weights[j])), el("td", {}, vector(e.v[j])))));
  const side = { encoder: "encoder self-attention", decoder: "decoder self-attention", cross: "cross-attention" }[e.side];
  $("sa-steps").replaceChildren(
    el("p", { class: "muted" }, `${side}, layer ${e.layer}, head ${e.head}; d_k = ${e.d_k}. Query word: “${word}”.`),
    step(1, `The query of “${word}”: q = h W_Q (its row of Q, this head)`, vector(e.q[i])),
    step(2, "The scores q · k_j against the key of every word", keyTable("q · k_j", e.scores[i])),
    step(3, `The scores divided by √d_k = ${Math.sqrt(e.d_k).toFixed(3)}` + (e.side === "decoder" ? " (later words masked: −∞)" : ""),
      keyTable("q · k_j / √d_k", e.scaled[i])),
    step(4, "The softmax: weights a_ij that sum to one", keyTable("a_ij", weights, bars)),
    step(5, "The weighted sum of the values: o = Σ_j a_ij v_j", valueRows, el("p", {}, "o ="), vector(e.out[i])),
  );
}

// ------------------------------------------------------------------ wiring

document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
$("chat-form").addEventListener("submit", sendChat);
$("chat-reset").addEventListener("click", () => { conversationId = null; $("chat-log").replaceChildren(); });
$("tr-form").addEventListener("submit", sendTranslate);
$("tr-model").addEventListener("change", () => syncLayerHead($("tr-model").value, $("hm-layer"), $("hm-head"), "cross"));
$("hm-layer").addEventListener("change", drawHeatmap);
$("hm-head").addEventListener("change", drawHeatmap);
$("sa-form").addEventListener("submit", loadSteps);
for (const id of ["sa-model", "sa-side"]) {
  $(id).addEventListener("change", () => { syncLayerHead($("sa-model").value, $("sa-layer"), $("sa-head"), $("sa-side").value); loadSteps(); });
}
for (const id of ["sa-layer", "sa-head"]) $(id).addEventListener("change", () => loadSteps());
loadModels().catch((err) => { $("status").textContent = `could not list the models: ${err.message}`; });
