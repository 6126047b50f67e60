//! Reading every layer of a source for an index built at start-up (token search, explanation
//! search), a few layers at once on threads of their own.

use dd_store::{SourceEntry, StoreError, StoreRead};

/// Reads one layer's items.
pub(crate) type LayerReader<T> = fn(&dyn StoreRead, &SourceEntry, u32) -> Result<Vec<T>, StoreError>;

/// Every layer's items, read by `read_layer` up to four layers at a time and yielded in layer
/// order: reading and decoding blobs is an index's cost, and the store's pool serves threads,
/// while memory holds only the layers being read.
pub(crate) fn read_layers<'a, T: Send + 'a>(
    store: &'a dyn StoreRead,
    source: &'a SourceEntry,
    read_layer: LayerReader<T>,
) -> impl Iterator<Item = Result<T, StoreError>> + 'a {
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4) as u32;
    let n_layers = source.info.n_layers as u32;
    let batches = (0..n_layers).step_by(n_threads as usize).map(move |first| first..(first + n_threads).min(n_layers));
    batches.flat_map(move |layers| {
        let read: Vec<Result<Vec<T>, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = layers.map(|layer| scope.spawn(move || read_layer(store, source, layer))).collect();
            // A reader's panic is a bug: it goes on as it would have without threads.
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        });
        read.into_iter().flat_map(|layer| match layer {
            Ok(items) => items.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(error) => vec![Err(error)],
        })
    })
}
