"""PD segmentation: the signal and model code behind the TorchServe handler.

Each module is one step, usable without a server: ``decode`` (request bodies to signals),
``preprocess`` (carrier removal, robust scaling), ``tones`` (stationary tones out),
``robust`` (the MAD scale both use), ``window`` (cut and stitch), ``model`` (the
UNet1D), ``pipeline`` (all steps over a batch), ``regions`` (probability to regions),
``transients`` (isolated short transients far out of the noise),
``phase`` (carrier phase for PRPD), ``prpd`` (phase-resolved summary), ``render`` (PNG),
``cache`` (answers to repeated requests).
This package is exactly what the model archive serves; training and evaluation code lives
in the top-level ``training`` package.
"""
