"""DeepDecipher from Python: neuron databases, the server and the model runtime."""

from deepdecipher._deepdecipher import Database, DeepDecipherError, Example, Model, Neuron, open

__all__ = ["Database", "DeepDecipherError", "Example", "Model", "Neuron", "open"]
