import pytest

from seqlab.data.synthetic import (
    NP,
    SPLIT_SIZES,
    builtin_split,
    generate_pairs,
    render_event,
    render_location,
    render_state,
)


def test_example_from_the_brief():
    assert render_event("Lucas", "visit", "Chile", tense="progressive", time="in January") == (
        "Lucas is visiting Chile in January.", "Lucas está visitando o Chile em janeiro.")


def test_agreement_and_adjective_after_the_noun():
    assert render_event("Maria", "buy", NP("car", adj="red", plural=True), tense="past") == (
        "Maria bought the red cars.", "Maria comprou os carros vermelhos.")
    # "mapa" is masculine despite its -a; azul -> azuis; numbers agree in gender
    assert render_event("he", "have", NP("map", det="two", adj="blue")) == (
        "He has two blue maps.", "Ele tem dois mapas azuis.")
    assert render_state(NP("house", det="two", adj="old"), "cheap", tense="past", mood="question") == (
        "Were two old houses cheap?", "Duas casas velhas eram baratas?")
    assert render_event("my sister", "eat", NP("apple", det="a")) == (
        "My sister eats an apple.", "A minha irmã come uma maçã.")


def test_possessives():
    assert render_event("Pedro", "wash", NP("car", det="their", adj="dirty"), time="on Saturdays") == (
        "Pedro washes their dirty car on Saturdays.", "Pedro lava o carro sujo deles aos sábados.")
    # "their" after a feminine plural subject is "delas"
    assert render_event("the girls", "paint", NP("house", det="their"), tense="progressive") == (
        "The girls are painting their house.", "As meninas estão pintando a casa delas.")
    assert render_event("we", "sell", NP("bicycle", det="our", plural=True), tense="future") == (
        "We will sell our bicycles.", "Nós vamos vender as nossas bicicletas.")


def test_place_articles_and_contractions():
    assert render_event("she", "travel to", "France", tense="future", mood="negative") == (
        "She will not travel to France.", "Ela não vai viajar para a França.")
    assert render_event("we", "live in", "Portugal") == ("We live in Portugal.", "Nós moramos em Portugal.")
    assert render_event("they", "return from", "the United States", tense="past", mood="question",
                        time="last week") == (
        "Did they return from the United States last week?", "Eles voltaram dos Estados Unidos na semana passada?")
    assert render_event("I", "work in", "Porto", tense="future", time="on Monday") == (
        "I will work in Porto on Monday.", "Eu vou trabalhar no Porto na segunda-feira.")
    assert render_event("I", "like", NP("house", det="this", adj="old", plural=True)) == (
        "I like these old houses.", "Eu gosto destas casas velhas.")


def test_conjugation_and_do_support():
    assert render_event("you", "bring", NP("cake", det="a"), mood="negative", time="on Mondays") == (
        "You do not bring a cake on Mondays.", "Você não traz um bolo às segundas-feiras.")
    assert render_event("I", "carry", NP("box"), tense="past") == ("I carried the box.", "Eu carreguei a caixa.")
    assert render_event("my parents", "see", NP("dog", det="that"), mood="question") == (
        "Do my parents see that dog?", "Os meus pais veem aquele cachorro?")
    assert render_event("Ana", "look for", NP("key", det="my", plural=True), tense="progressive") == (
        "Ana is looking for my keys.", "Ana está procurando as minhas chaves.")


def test_ser_estar_and_locations():
    assert render_state("Maria", "tired", tense="past") == ("Maria was tired.", "Maria estava cansada.")
    assert render_state("the children", "hungry") == ("The children are hungry.", "As crianças estão com fome.")
    assert render_state(NP("car"), "red", mood="negative") == ("The car is not red.", "O carro não é vermelho.")
    assert render_location(NP("book"), "on", NP("table")) == ("The book is on the table.", "O livro está na mesa.")
    assert render_location("I", "next to", NP("door", det="that"), tense="future") == (
        "I will be next to that door.", "Eu vou estar ao lado daquela porta.")
    assert render_location(NP("key", det="my", plural=True), "under", NP("bed"), mood="where") == (
        "Where are my keys?", "Onde estão as minhas chaves?")


def test_impossible_choices_are_refused():
    with pytest.raises(ValueError, match="no grammatical gender"):
        render_state("I", "tired")  # cansado or cansada?
    with pytest.raises(ValueError, match="does not go with the future tense"):
        render_event("Lucas", "visit", "Chile", tense="future", time="yesterday")
    with pytest.raises(ValueError, match="does not take the object"):
        render_event("Lucas", "eat", NP("car"))
    with pytest.raises(ValueError, match="unknown place 'Atlantis'"):
        render_event("Lucas", "visit", "Atlantis")


def test_generation_is_deterministic_distinct_and_well_formed():
    pairs = generate_pairs(400, seed=5)
    assert pairs == generate_pairs(400, seed=5)
    assert pairs[:100] == generate_pairs(100, seed=5)
    assert pairs != generate_pairs(400, seed=6)
    assert len({en for en, _ in pairs}) == 400
    for en, pt in pairs:
        assert en[0].isupper() and pt[0].isupper() and en[-1] in ".?" and pt[-1] == en[-1]


def test_translation_is_a_function_of_the_source():
    # Two seeds draw overlapping sentences; every shared English source has one translation.
    first, second = dict(generate_pairs(20_000, seed=1)), dict(generate_pairs(20_000, seed=2))
    shared = first.keys() & second.keys()
    assert len(shared) > 100
    assert all(first[en] == second[en] for en in shared)


def test_builtin_splits_are_disjoint_and_sized():
    splits = {name: builtin_split(name) for name in SPLIT_SIZES}
    assert {name: len(pairs) for name, pairs in splits.items()} == {"train": 30_000, "dev": 500, "test": 500}
    sources = {name: {en for en, _ in pairs} for name, pairs in splits.items()}
    assert len(sources["train"]) == 30_000
    assert not sources["train"] & sources["dev"] and not sources["train"] & sources["test"]
    assert not sources["dev"] & sources["test"]
    assert builtin_split("dev") == splits["dev"]  # cached, and a fresh list each call
    vocabulary = {w.strip(".?").lower() for en, _ in splits["train"] for w in en.split()}
    assert 300 <= len(vocabulary) <= 1000  # "a few hundred words"
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        builtin_split("valid")


def test_grammar_has_room_for_forty_thousand_sources():
    assert len(generate_pairs(40_000, seed=0)) == 40_000
