"""Type stubs of the `deepdecipher` package (implemented in Rust, `crates/dd-python`)."""

from os import PathLike
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt
import pandas as pd

__version__: str

StrPath = Union[str, PathLike[str]]

class DeepDecipherError(Exception):
    """Every error the package raises: unknown models and neurons, unreadable files, failed requests."""

class Database:
    """A DeepDecipher database: a local file (`open`) or a server (`Client`)."""
    def model_names(self) -> list[str]:
        """The names of the models, in the order they were added."""
    def models(self) -> list[Model]:
        """Every model."""
    def model(self, name: Optional[str] = None) -> Model:
        """The model called `name`, or the only one when `name` is None."""

class Client(Database):
    """A running DeepDecipher server, read through the same interface as a local file."""
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        """A client of the server at `url` (http:// or https://), each request limited to `timeout` seconds."""

def open(path: StrPath, embedder: Optional[StrPath] = None) -> Database:
    """Opens the database at `path` for reading; `embedder` names an all-MiniLM-L6-v2 folder for
    `Model.search_explanations`."""

class Model:
    """One model of a database."""
    @property
    def name(self) -> str:
        """The model's name."""
    @property
    def n_layers(self) -> int:
        """Number of layers."""
    @property
    def layer_size(self) -> int:
        """MLP neurons per layer."""
    @property
    def shape(self) -> tuple[int, int]:
        """`(n_layers, layer_size)`."""
    @property
    def metadata(self) -> dict[str, Any]:
        """The API's metadata object: architecture, sizes, dataset, provenance, sources, services."""
    def vocabulary(self) -> list[str]:
        """Each token id's display string."""
    def neuron(self, layer: int, index: int, source: str = "mlp") -> Neuron:
        """The neuron `index` of `layer` (of `source`), with every record stored for it."""
    def layer_stats(self, layer: int, source: str = "mlp") -> pd.DataFrame:
        """A layer's per-neuron summary (max and min activation, density, kurtosis), indexed by neuron."""
    def layer_ranking(self, layer: int, source: str = "mlp") -> pd.DataFrame:
        """A layer's neurons ranked by interestingness (`layer`, `neuron`, `score`)."""
    def layer_roles(self, layer: int, source: str = "mlp") -> pd.DataFrame:
        """A layer's roles in the weight graph (`role`, degrees, strengths, `strength_z`, `participation`, `betweenness`, `group`), indexed by neuron."""
    def layer_changes(self, layer: int, source: str = "mlp") -> pd.DataFrame:
        """A layer's change against the baseline recording, indexed by neuron; `attrs["baseline"]` names the baseline."""
    def groups(self) -> list[Group]:
        """The model's groups of neurons that fire together, most cohesive first."""
    def ranking(self) -> pd.DataFrame:
        """The model's most interesting neurons (`layer`, `neuron`, `score`)."""
    def search(self, query: str, limit: int = 20, exact: bool = False) -> SearchResults:
        """Neurons that respond to tokens (`"paris"`, `"any:the,important:dog"`), most selective first."""
    def search_explanations(self, text: str, limit: int = 20, min_score: Optional[float] = None) -> SearchResults:
        """Explanations closest in meaning to `text` (needs embedded explanations and an encoder)."""

class Neuron:
    """One neuron with every record the database has for it."""
    model: str
    """The model's name."""
    source: str
    """The hook point (`mlp` for MLP neurons)."""
    layer: int
    """Layer."""
    index: int
    """Index within the layer."""
    @property
    def address(self) -> tuple[int, int]:
        """`(layer, index)`."""
    @property
    def kinds(self) -> list[str]:
        """The kinds of data stored for it."""
    @property
    def examples(self) -> list[Example]:
        """Every example context, group by group (top, bottom, quantile bands, random)."""
    @property
    def top_examples(self) -> list[Example]:
        """The top-activating examples, strongest first."""
    @property
    def stats(self) -> Optional[Stats]:
        """Activation statistics and histogram."""
    @property
    def logits(self) -> Optional[TokenLists]:
        """Direct logit attribution: output tokens promoted (`top`) and suppressed (`bottom`)."""
    @property
    def input_tokens(self) -> Optional[TokenLists]:
        """Input tokens raising (`top`) and lowering (`bottom`) it most through the direct path."""
    @property
    def activating_tokens(self) -> list[TokenMean]:
        """Tokens with its highest mean activation over the recorded dataset."""
    @property
    def connections(self) -> Optional[tuple[list[Connection], list[Connection]]]:
        """`(inputs, outputs)`: the neurons driving it most and those it drives most, by weights."""
    @property
    def explanations(self) -> list[Explanation]:
        """Its explanations, best first."""
    @property
    def graph(self) -> Optional[Graph]:
        """Its Neuron2Graph graph."""
    @property
    def correlations(self) -> Optional[tuple[list[Correlation], list[Correlation]]]:
        """`(positive, negative)`: the neurons of the whole model whose activations correlate most with its own."""
    @property
    def embedding(self) -> Optional[Embedding]:
        """A vector for its behaviour and its nearest neighbours."""
    @property
    def similar(self) -> list[SimilarNeuron]:
        """The neurons most similar to it."""
    def _repr_html_(self) -> str:
        """The neuron as the website draws it."""

class Example:
    """One example context: its tokens, their ids and the neuron's activation on each."""
    group: str
    """Why it was chosen: `top`, `bottom`, `quantile` or `random`."""
    band: Optional[int]
    """The activation band of a `quantile` example."""
    dataset_index: int
    """Index of the context in the recorded dataset."""
    tokens: list[str]
    """The tokens as the website shows them."""
    max_token_index: int
    """Position of the token that put the example in its group."""
    @property
    def token_ids(self) -> npt.NDArray[np.uint32]:
        """The token ids."""
    @property
    def activations(self) -> npt.NDArray[np.float32]:
        """The neuron's activation at each token."""
    @property
    def max_activation(self) -> float:
        """The activation at `max_token_index`."""
    @property
    def text(self) -> str:
        """The tokens joined."""
    def __len__(self) -> int: ...
    def _repr_html_(self) -> str:
        """The example coloured by activation, as on the website."""

class Stats:
    """Activation statistics over every recorded position but BOS, and the histogram."""
    count: int
    max: float
    min: float
    mean: float
    variance: float
    skewness: float
    kurtosis: float
    density: float
    interestingness: float
    @property
    def histogram_edges(self) -> npt.NDArray[np.float32]:
        """Bin edges, one more than the counts."""
    @property
    def histogram_counts(self) -> npt.NDArray[np.uint64]:
        """Counts per bin."""
    @property
    def bos(self) -> Optional[tuple[int, float, float, float]]:
        """The BOS position's own `(count, max, min, mean)`."""

class TokenValue:
    """A token with a value: a logit effect or an input token's drive."""
    token: str
    token_id: int
    value: float

class TokenLists:
    """Tokens raised most (`top`) and lowered most (`bottom`)."""
    @property
    def top(self) -> list[TokenValue]: ...
    @property
    def bottom(self) -> list[TokenValue]: ...

class TokenMean:
    """A token with the neuron's mean activation on it over the recorded dataset."""
    token: str
    token_id: int
    mean: float
    count: int

class Connection:
    """A weight connection to another neuron."""
    layer: int
    neuron: int
    weight: float

class SimilarNeuron:
    """A neuron similar to another one."""
    layer: int
    neuron: int
    similarity: float

class Correlation:
    """A neuron whose activations correlate with another's."""
    layer: int
    neuron: int
    correlation: float

class Embedding:
    """A vector for a neuron's behaviour and its nearest neighbours."""
    source: str
    """What the vector was built from: `graph` or `activating_tokens`."""
    @property
    def vector(self) -> npt.NDArray[np.float32]:
        """The unit-length vector."""
    @property
    def neighbours(self) -> list[SimilarNeuron]:
        """The nearest neurons by centred cosine, nearest first."""

class Group:
    """Neurons that fire together: a community of the correlation graph."""
    number: int
    """Its position in the model's list, most cohesive first."""
    cohesion: float
    """Mean Pearson r over all pairs of members."""
    members: list[tuple[int, int]]
    """`(layer, neuron)` of each member."""
    @property
    def contexts(self) -> list[GroupContext]:
        """The contexts where the members fire together most, strongest first."""
    def __len__(self) -> int: ...

class GroupContext:
    """A context where a group's members fire together."""
    dataset_index: int
    firing: int
    """Members at z ≥ 2 on the best token."""
    @property
    def tokens(self) -> list[str]:
        """The tokens as text."""
    @property
    def token_ids(self) -> npt.NDArray[np.uint32]:
        """The token ids."""
    @property
    def scores(self) -> npt.NDArray[np.float32]:
        """The members' mean z-score on each token."""

class Explanation:
    """A natural-language explanation with its scores and how it was made."""
    text: str
    origin: str
    author: Optional[str]
    scores: dict[str, float]
    score: Optional[float]
    prompt_version: Optional[str]
    prompt: Optional[str]
    simulator: Optional[str]
    created: Optional[str]
    @property
    def simulations(
        self,
    ) -> list[tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
        """Held-out sequences as `(token_ids, true_activations, simulated_activations)`."""

class GraphNode:
    """One node of a Neuron2Graph graph."""
    token: str
    token_id: Optional[int]
    importance: float
    activation: Optional[float]
    is_end: bool
    required: list[int]

class Graph:
    """A Neuron2Graph graph: token nodes whose paths predict where the neuron fires."""
    @property
    def nodes(self) -> list[GraphNode]: ...
    @property
    def activating_tokens(self) -> list[str]: ...
    @property
    def held_out_scores(self) -> Optional[tuple[Optional[float], Optional[float], Optional[float]]]:
        """`(precision, recall, f1)` on held-out top examples."""

class SearchHit:
    """One neuron a search found."""
    layer: int
    neuron: int
    score: Optional[float]
    text: str

class SearchResults:
    """A search's hits, best first; `page` is the API's whole answer."""
    page: dict[str, Any]
    @property
    def hits(self) -> list[SearchHit]: ...
    def to_pandas(self) -> pd.DataFrame:
        """The hits as a DataFrame (`layer`, `neuron`, `score`, `text`)."""
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> SearchHit: ...
    def __iter__(self) -> Iterator[SearchHit]: ...
    def _repr_html_(self) -> str: ...

class LoadedModel:
    """A transformer loaded by DeepDecipher's runtime."""
    name: str
    config: dict[str, Any]
    def tokenize(self, text: str, bos: bool = True) -> list[int]:
        """`text` as token ids, BOS first when `bos`."""
    def tokens(self, ids: Sequence[int]) -> list[str]:
        """The display string of each token id."""
    def run(
        self,
        inputs: Union[str, Sequence[str], Sequence[int], Sequence[Sequence[int]], npt.ArrayLike],
        layers: Optional[Sequence[int]] = None,
        logits: bool = False,
        bos: bool = True,
    ) -> RunResult:
        """MLP activations of `layers` (all by default) as `[batch, position, neuron]` arrays, and
        logits when asked; the GIL is released while the model runs."""

class RunResult:
    """What `LoadedModel.run` returns."""
    activations: dict[int, npt.NDArray[np.float32]]
    logits: Optional[npt.NDArray[np.float32]]
    token_ids: npt.NDArray[np.uint32]
    lengths: list[int]
    def __getitem__(self, layer: int) -> npt.NDArray[np.float32]: ...

def load_model(model: str) -> LoadedModel:
    """Loads a local model (folder, .gguf, TransformerLens checkpoint) or a hub id (`org/name[@rev][:file]`)."""

def record(
    model: Union[LoadedModel, str],
    dataset: StrPath,
    output: StrPath,
    *,
    name: Optional[str] = None,
    tokens: Optional[int] = None,
    context: int = 128,
    batch: int = 8,
    top: int = 20,
    bottom: Optional[int] = None,
    bands: int = 10,
    per_band: int = 2,
    random: int = 5,
    weight_facts: bool = True,
    dataset_name: Optional[str] = None,
    text_field: str = "text",
    progress: bool = True,
) -> dict[str, Any]:
    """Records `dataset` through `model` into the database `output` (the CLI's `record`); an
    interrupt checkpoints and raises KeyboardInterrupt, and calling again resumes."""

def export(
    database: StrPath,
    model: str,
    output: StrPath,
    format: str = "parquet",
    kinds: Optional[Sequence[str]] = None,
    progress: bool = True,
) -> dict[str, int]:
    """Exports a model as `parquet` or `jsonl.gz` (docs/export.md)."""

def import_dataset(
    format: str,
    source: str,
    output: StrPath,
    *,
    model_name: Optional[str] = None,
    layers: Optional[Sequence[int]] = None,
    units_per_layer: Optional[int] = None,
    replace: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Imports a published dataset (docs/import.md) into the database `output`; resumable."""

def neuron2graph(
    database: StrPath,
    model: Union[LoadedModel, str],
    *,
    name: Optional[str] = None,
    top_interesting: Optional[int] = None,
    layers: Optional[Sequence[int]] = None,
    neurons: Optional[Sequence[int]] = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Builds Neuron2Graph graphs for chosen neurons of the recorded `model` (`deepdecipher n2g`),
    then the token index and similar neurons; resumable."""

def explain(
    database: StrPath,
    explainer: Union[LoadedModel, str],
    *,
    model_name: Optional[str] = None,
    top_interesting: Optional[int] = None,
    layers: Optional[Sequence[int]] = None,
    neurons: Optional[Sequence[int]] = None,
    simulate: bool = True,
    embedder: Optional[StrPath] = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Explains chosen neurons with a local instruct model (`deepdecipher explain --local`),
    simulates and scores each explanation, and embeds it when `embedder` is given; resumable."""

class Server:
    """A DeepDecipher server running in the background of this process."""
    url: str
    port: int
    running: bool
    def stop(self) -> None:
        """Stops the server and waits until it has."""
    def __enter__(self) -> Server: ...
    def __exit__(self, *args: object) -> None: ...

def serve(database: StrPath, port: int = 0, host: str = "127.0.0.1", embedder: Optional[StrPath] = None) -> Server:
    """Serves the database (API and website) on `host:port` in the background."""
