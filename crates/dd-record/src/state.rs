//! The recorder's whole state in a binary file: checkpoints to resume from, and shards to merge.
//!
//! Little-endian, versioned, written to a temporary file, synced and renamed over the old one, so a
//! crash leaves either the previous checkpoint or the new one. Reading checks every length against
//! what is left of the file, so a damaged file is an error, never a huge allocation or a panic.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::accumulate::grid::AlignedGrid;
use crate::accumulate::moments::Moments;
use crate::accumulate::selection::{SelectedContext, Selection};
use crate::accumulate::{
    BandSamples, BosValues, GridHistogram, ModelAccumulator, NeuronAccumulator, NeuronChunk, TokenSlots,
};
use crate::contexts::ContextTokens;
use crate::error::RecordError;

const MAGIC: &[u8; 8] = b"DDRECORD";
/// Version 3 keeps each neuron's BOS activations apart ([`NeuronAccumulator::bos`]).
const VERSION: u32 = 3;

/// Everything needed to continue or merge a recording.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecorderState {
    /// The settings that must match to resume or merge (model, dataset, sizes), as text.
    pub(crate) settings: String,
    /// Which slice of the dataset this is: contexts with `index % shard.1 == shard.0`.
    pub(crate) shard: (u64, u64),
    /// The first context index not recorded yet.
    pub(crate) next_context: u64,
    pub(crate) contexts_recorded: u64,
    pub(crate) tokens_recorded: u64,
    pub(crate) accumulator: ModelAccumulator,
    pub(crate) contexts: ContextTokens,
}

struct Writer<W: Write> {
    inner: W,
}

impl<W: Write> Writer<W> {
    fn bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)
    }
    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn i64(&mut self, v: i64) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn f32(&mut self, v: f32) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn f64(&mut self, v: f64) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn len(&mut self, n: usize) -> std::io::Result<()> {
        self.u64(n as u64)
    }
    fn u16s(&mut self, values: &[u16]) -> std::io::Result<()> {
        self.len(values.len())?;
        values.iter().try_for_each(|v| self.bytes(&v.to_le_bytes()))
    }
    fn u32s(&mut self, values: &[u32]) -> std::io::Result<()> {
        self.len(values.len())?;
        values.iter().try_for_each(|&v| self.u32(v))
    }
    fn u64s(&mut self, values: &[u64]) -> std::io::Result<()> {
        self.len(values.len())?;
        values.iter().try_for_each(|&v| self.u64(v))
    }
    fn f64s(&mut self, values: &[f64]) -> std::io::Result<()> {
        self.len(values.len())?;
        values.iter().try_for_each(|&v| self.f64(v))
    }
    fn grid(&mut self, grid: &AlignedGrid) -> std::io::Result<()> {
        self.u32(grid.n_bins)?;
        self.i64(i64::from(grid.exponent))?;
        self.i64(grid.start)?;
        self.f32(grid.min)?;
        self.f32(grid.max)?;
        self.u64(grid.count)
    }
    fn selection(&mut self, selection: &Selection) -> std::io::Result<()> {
        self.u32(selection.capacity())?;
        self.len(selection.slots().len())?;
        for slot in selection.slots() {
            self.u64(slot.key)?;
            self.u64(slot.context)?;
            self.u32(slot.position)?;
            self.f32(slot.max)?;
            self.f32(slot.lower)?;
            self.f32(slot.upper)?;
            self.u16s(&slot.codes)?;
        }
        Ok(())
    }
    fn neuron(&mut self, neuron: &NeuronAccumulator) -> std::io::Result<()> {
        let m = &neuron.moments;
        self.u64(m.count)?;
        [m.mean, m.m2, m.m3, m.m4].iter().try_for_each(|&v| self.f64(v))?;
        self.u64(neuron.positive)?;
        let bos = &neuron.bos;
        self.u64(bos.count)?;
        self.f32(bos.min)?;
        self.f32(bos.max)?;
        self.f64(bos.sum)?;
        self.grid(&neuron.histogram.grid)?;
        self.u64s(&neuron.histogram.counts)?;
        self.selection(&neuron.top)?;
        self.selection(&neuron.bottom)?;
        self.selection(&neuron.random)?;
        self.grid(&neuron.bands.grid)?;
        self.len(neuron.bands.bands.len())?;
        neuron.bands.bands.iter().try_for_each(|band| self.selection(band))
    }
}

struct Reader<R: Read> {
    inner: R,
    /// Bytes left in the file: no length may promise more.
    remaining: u64,
}

type ReadResult<T> = Result<T, String>;

impl<R: Read> Reader<R> {
    fn array<const N: usize>(&mut self) -> ReadResult<[u8; N]> {
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(|e| format!("truncated ({e})"))?;
        self.remaining = self.remaining.saturating_sub(N as u64);
        Ok(buf)
    }
    fn u32(&mut self) -> ReadResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> ReadResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> ReadResult<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> ReadResult<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> ReadResult<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    fn len(&mut self, element_size: u64) -> ReadResult<usize> {
        let n = self.u64()?;
        if n.saturating_mul(element_size.max(1)) > self.remaining {
            return Err(format!("a length of {n} is longer than the rest of the file"));
        }
        Ok(n as usize)
    }
    fn u16s(&mut self) -> ReadResult<Vec<u16>> {
        let n = self.len(2)?;
        (0..n).map(|_| Ok(u16::from_le_bytes(self.array()?))).collect()
    }
    fn u32s(&mut self) -> ReadResult<Vec<u32>> {
        let n = self.len(4)?;
        (0..n).map(|_| self.u32()).collect()
    }
    fn u64s(&mut self) -> ReadResult<Vec<u64>> {
        let n = self.len(8)?;
        (0..n).map(|_| self.u64()).collect()
    }
    fn f64s(&mut self) -> ReadResult<Vec<f64>> {
        let n = self.len(8)?;
        (0..n).map(|_| self.f64()).collect()
    }
    fn string(&mut self) -> ReadResult<String> {
        let n = self.len(1)?;
        let mut bytes = vec![0u8; n];
        self.inner.read_exact(&mut bytes).map_err(|e| format!("truncated ({e})"))?;
        self.remaining = self.remaining.saturating_sub(n as u64);
        String::from_utf8(bytes).map_err(|_| "settings are not UTF-8".to_owned())
    }
    fn grid(&mut self) -> ReadResult<AlignedGrid> {
        let n_bins = self.u32()?;
        let exponent = i32::try_from(self.i64()?).map_err(|_| "bad grid exponent".to_owned())?;
        Ok(AlignedGrid { n_bins, exponent, start: self.i64()?, min: self.f32()?, max: self.f32()?, count: self.u64()? })
    }
    fn selection(&mut self) -> ReadResult<Selection> {
        let capacity = self.u32()?;
        let n = self.len(36)?;
        if n > capacity as usize {
            return Err(format!("a selection holds {n} contexts but keeps at most {capacity}"));
        }
        let slots = (0..n)
            .map(|_| {
                Ok(SelectedContext {
                    key: self.u64()?,
                    context: self.u64()?,
                    position: self.u32()?,
                    max: self.f32()?,
                    lower: self.f32()?,
                    upper: self.f32()?,
                    codes: self.u16s()?,
                })
            })
            .collect::<ReadResult<Vec<_>>>()?;
        Ok(Selection::from_slots(capacity, slots))
    }
    fn neuron(&mut self) -> ReadResult<NeuronAccumulator> {
        let moments =
            Moments { count: self.u64()?, mean: self.f64()?, m2: self.f64()?, m3: self.f64()?, m4: self.f64()? };
        let positive = self.u64()?;
        let bos = BosValues { count: self.u64()?, min: self.f32()?, max: self.f32()?, sum: self.f64()? };
        let grid = self.grid()?;
        let counts = self.u64s()?;
        if counts.len() != grid.n_bins as usize {
            return Err("histogram bins do not match its grid".to_owned());
        }
        let histogram = GridHistogram::from_parts(grid, counts);
        let (top, bottom, random) = (self.selection()?, self.selection()?, self.selection()?);
        let band_grid = self.grid()?;
        let n_bands = self.len(4)?;
        let bands = (0..n_bands).map(|_| self.selection()).collect::<ReadResult<Vec<_>>>()?;
        if !bands.is_empty() && bands.len() != band_grid.n_bins as usize {
            return Err("bands do not match their grid".to_owned());
        }
        Ok(NeuronAccumulator {
            moments,
            positive,
            histogram,
            top,
            bottom,
            bands: BandSamples { grid: band_grid, bands },
            random,
            bos,
        })
    }
}

/// Checks that the chunks are the ones [`ModelAccumulator::new`] lays out and that every grid and
/// selection is one the recorder could have built, so a damaged file cannot index out of range.
fn check_layout(accumulator: &ModelAccumulator) -> ReadResult<()> {
    let chunk_width = crate::accumulate::CHUNK as u32;
    let expected = (0..accumulator.n_layers)
        .flat_map(|layer| (0..accumulator.d_mlp).step_by(chunk_width as usize).map(move |first| (layer, first)));
    let mut n_chunks = 0;
    for (chunk, (layer, first)) in accumulator.chunks.iter().zip(expected) {
        n_chunks += 1;
        let width = (accumulator.d_mlp - first).min(chunk_width) as usize;
        if (chunk.layer, chunk.first, chunk.neurons.len()) != (layer, first, width) {
            return Err(format!("chunk {n_chunks} is not the one expected at layer {layer}, neuron {first}"));
        }
        let n_bins = chunk.neurons.first().map_or(0, |n| n.histogram.counts.len());
        for neuron in &chunk.neurons {
            let histogram_ok = neuron.histogram.grid.is_consistent()
                && neuron.histogram.counts.len() == n_bins
                && neuron.histogram.counts.iter().sum::<u64>() == neuron.histogram.grid.count;
            let bands_ok = neuron.bands.bands.is_empty()
                || (neuron.bands.grid.is_consistent() && neuron.bands.bands.len() == neuron.bands.grid.n_bins as usize);
            let selections = [&neuron.top, &neuron.bottom, &neuron.random].into_iter().chain(&neuron.bands.bands);
            let slots_ok =
                selections.flat_map(|s| s.slots()).all(|slot| (slot.position as usize) < slot.codes.len().max(1));
            if !(histogram_ok && bands_ok && slots_ok) {
                return Err(format!("a neuron of layer {layer} near neuron {first} holds inconsistent data"));
            }
        }
    }
    let expected_chunks = accumulator.n_layers as usize * (accumulator.d_mlp as usize).div_ceil(chunk_width as usize);
    if n_chunks != expected_chunks || accumulator.chunks.len() != expected_chunks {
        return Err("the chunks do not cover the model's shape".to_owned());
    }
    Ok(())
}

fn write_state<W: Write>(w: &mut Writer<W>, state: &RecorderState) -> std::io::Result<()> {
    w.bytes(MAGIC)?;
    w.u32(VERSION)?;
    w.len(state.settings.len())?;
    w.bytes(state.settings.as_bytes())?;
    w.u64(state.shard.0)?;
    w.u64(state.shard.1)?;
    w.u64(state.next_context)?;
    w.u64(state.contexts_recorded)?;
    w.u64(state.tokens_recorded)?;
    let acc = &state.accumulator;
    w.u32(acc.n_layers)?;
    w.u32(acc.d_mlp)?;
    w.bytes(&[u8::from(acc.bos_apart)])?;
    w.len(acc.token_slots.slot_of.len())?;
    w.u32s(&acc.token_slots.tokens)?;
    w.u64s(&acc.token_slots.counts)?;
    w.len(acc.chunks.len())?;
    for chunk in &acc.chunks {
        w.u32(chunk.layer)?;
        w.u32(chunk.first)?;
        w.len(chunk.neurons.len())?;
        chunk.neurons.iter().try_for_each(|n| w.neuron(n))?;
        w.f64s(&chunk.token_sums)?;
    }
    w.u64s(&state.contexts.indices)?;
    w.u64s(&state.contexts.offsets)?;
    w.u32s(&state.contexts.tokens)
}

fn read_state<R: Read>(r: &mut Reader<R>) -> ReadResult<RecorderState> {
    if &r.array::<8>()? != MAGIC {
        return Err("not a DeepDecipher recorder state".to_owned());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!("format version {version}, this build reads {VERSION}"));
    }
    let settings = r.string()?;
    let shard = (r.u64()?, r.u64()?);
    let (next_context, contexts_recorded, tokens_recorded) = (r.u64()?, r.u64()?, r.u64()?);
    let (n_layers, d_mlp) = (r.u32()?, r.u32()?);
    let bos_apart = match r.array::<1>()? {
        [0] => false,
        [1] => true,
        [other] => return Err(format!("BOS flag {other} is neither 0 nor 1")),
    };
    let vocab_size = r.u64()? as usize;
    if vocab_size > 1 << 26 {
        return Err(format!("a vocabulary of {vocab_size} tokens is not plausible"));
    }
    let tokens = r.u32s()?;
    let counts = r.u64s()?;
    if counts.len() != tokens.len() || tokens.iter().any(|&t| t as usize >= vocab_size) {
        return Err("token table does not match its vocabulary".to_owned());
    }
    let mut token_slots = TokenSlots::new(vocab_size.min(u32::MAX as usize), tokens);
    token_slots.counts = counts;
    let n_chunks = r.len(12)?;
    let mut chunks = Vec::with_capacity(n_chunks);
    for _ in 0..n_chunks {
        let (layer, first) = (r.u32()?, r.u32()?);
        let n = r.len(64)?;
        let neurons = (0..n).map(|_| r.neuron()).collect::<ReadResult<Vec<_>>>()?;
        let token_sums = r.f64s()?;
        if token_sums.len() != n * token_slots.tokens.len() {
            return Err("token sums do not match the token table".to_owned());
        }
        chunks.push(NeuronChunk { layer, first, neurons, token_sums });
    }
    let contexts = ContextTokens { indices: r.u64s()?, offsets: r.u64s()?, tokens: r.u32s()? };
    let offsets_ok = contexts.offsets.len() == contexts.indices.len() + usize::from(!contexts.indices.is_empty())
        && contexts.offsets.windows(2).all(|w| w[0] <= w[1])
        && contexts.offsets.last().is_none_or(|&last| last == contexts.tokens.len() as u64)
        && contexts.indices.windows(2).all(|w| w[0] < w[1]);
    if !offsets_ok {
        return Err("context table is inconsistent".to_owned());
    }
    let accumulator = ModelAccumulator { n_layers, d_mlp, bos_apart, chunks, token_slots };
    check_layout(&accumulator)?;
    if shard.1 == 0 || shard.0 >= shard.1 {
        return Err(format!("shard {}/{} does not exist", shard.0, shard.1));
    }
    Ok(RecorderState { settings, shard, next_context, contexts_recorded, tokens_recorded, accumulator, contexts })
}

impl RecorderState {
    /// Writes the state to `path` atomically: a temporary file, synced, then renamed.
    pub(crate) fn save(&self, path: &Path) -> Result<(), RecordError> {
        let temporary = temporary_path(path);
        let io_error =
            |source| RecordError::State { path: path.to_owned(), message: format!("cannot write: {source}") };
        let file = File::create(&temporary).map_err(io_error)?;
        let mut writer = Writer { inner: BufWriter::with_capacity(1 << 20, file) };
        write_state(&mut writer, self).map_err(io_error)?;
        let file = writer.inner.into_inner().map_err(|e| io_error(e.into_error()))?;
        file.sync_all().map_err(io_error)?;
        drop(file);
        std::fs::rename(&temporary, path).map_err(io_error)?;
        // The rename is durable only once the directory is synced.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent).and_then(|d| d.sync_all()).map_err(io_error)?;
        }
        Ok(())
    }

    /// The state as bytes, as [`Self::save`] writes them to a file.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer { inner: Vec::new() };
        // Writing into a Vec cannot fail.
        let _ = write_state(&mut writer, self);
        writer.inner
    }

    /// Reads a state from bytes made by [`Self::to_bytes`]; `origin` names them in errors.
    pub(crate) fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self, RecordError> {
        let mut reader = Reader { inner: bytes, remaining: bytes.len() as u64 };
        read_state(&mut reader).map_err(|message| RecordError::State { path: origin.to_owned(), message })
    }

    /// Reads a state written by [`Self::save`].
    pub(crate) fn load(path: &Path) -> Result<Self, RecordError> {
        let error = |message: String| RecordError::State { path: path.to_owned(), message };
        let file = File::open(path).map_err(|e| error(format!("cannot open: {e}")))?;
        let remaining = file.metadata().map_err(|e| error(format!("cannot stat: {e}")))?.len();
        let mut reader = Reader { inner: BufReader::with_capacity(1 << 20, file), remaining };
        read_state(&mut reader).map_err(error)
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}
