"""Export trained runs to fast inference engines (CTranslate2, ONNX Runtime) and int8 decoding.

* :mod:`seqlab.export.weights` reads a Transformer's weights in the layout engines expect;
* :mod:`seqlab.export.ctranslate2` builds a CTranslate2 model and decodes through it;
* :mod:`seqlab.export.onnx` writes the encoder and one cached decoder step as ONNX graphs and runs
  them with ONNX Runtime behind seqlab's own decoding;
* :mod:`seqlab.export.int8` quantizes the linear layers to int8 for the native CPU path;
* :mod:`seqlab.export.engines` chooses between them for the API and the command line.
"""
