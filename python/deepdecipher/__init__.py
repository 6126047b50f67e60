"""DeepDecipher from Python: neuron databases (local files and servers), the model runtime, and
the producers (record, import, export, serve).

    import deepdecipher
    db = deepdecipher.open("demo.db")            # or deepdecipher.Client("http://127.0.0.1:8080")
    model = db.model()
    neuron = model.neuron(3, 7)
    neuron.top_examples[0].activations           # a NumPy array
    model.layer_stats(3)                         # a pandas DataFrame

    m = deepdecipher.load_model("path/to/SmolLM2-135M-Instruct.gguf")
    m.run("The capital of France is", layers=[3])[3]   # [batch, position, neuron]
"""

from deepdecipher._deepdecipher import (
    Client,
    Connection,
    Correlation,
    Database,
    DeepDecipherError,
    Embedding,
    Example,
    Explanation,
    Graph,
    GraphNode,
    Group,
    GroupContext,
    LoadedModel,
    Model,
    Neuron,
    RunResult,
    SearchHit,
    SearchResults,
    Server,
    SimilarNeuron,
    Stats,
    TokenLists,
    TokenMean,
    TokenValue,
    __version__,
    explain,
    export,
    import_dataset,
    load_model,
    neuron2graph,
    open,
    record,
    serve,
)

__all__ = [
    "Client",
    "Connection",
    "Correlation",
    "Database",
    "DeepDecipherError",
    "Embedding",
    "Example",
    "Explanation",
    "Graph",
    "GraphNode",
    "Group",
    "GroupContext",
    "LoadedModel",
    "Model",
    "Neuron",
    "RunResult",
    "SearchHit",
    "SearchResults",
    "Server",
    "SimilarNeuron",
    "Stats",
    "TokenLists",
    "TokenMean",
    "TokenValue",
    "__version__",
    "explain",
    "export",
    "import_dataset",
    "load_model",
    "neuron2graph",
    "open",
    "record",
    "serve",
]
