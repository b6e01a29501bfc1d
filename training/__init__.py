"""What only training and evaluation use: ``synthetic`` (the training generator), ``trainer``
(training loop, choice of region rules), ``scoring`` (event matching), ``classical`` (the
baseline detector), ``independent`` (a second generator, for evaluation only) and ``atlas``
(the pulse atlas).

Nothing here is packed into the model archive; ``handler/`` is exactly what the ``.mar`` serves.
"""
