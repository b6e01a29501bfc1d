"""What only training and evaluation use: generators, the pulse atlas, scoring helpers.

Nothing here is packed into the model archive; ``handler/`` is exactly what the ``.mar`` serves.
"""
