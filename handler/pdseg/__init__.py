"""PD segmentation: the signal and model code behind the TorchServe handler.

Each module is one step, usable without a server: ``decode`` (request bodies to signals),
``preprocess`` (carrier removal, robust scaling), ``window`` (cut and stitch), ``model`` (the
UNet1D), ``pipeline`` (all steps over a batch), ``regions`` (probability to regions),
``phase`` (carrier phase for PRPD), ``render`` (PNG), ``synthetic`` (labelled captures),
``classical`` (the baseline detector), ``scoring`` (event matching), ``training``.
"""
