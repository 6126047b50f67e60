"""DeepDecipher from Python: neuron databases, the server and the model runtime."""

from deepdecipher._deepdecipher import Database, DeepDecipherError, open

__all__ = ["Database", "DeepDecipherError", "open"]
