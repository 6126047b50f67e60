//! The forward pass: one generic decoder block that covers GPT-2, GPT-NeoX, TransformerLens and
//! Llama, returning MLP neuron activations and stopping after the last layer asked for.
//!
//! Activation definitions (the one place they are stated):
//! - GELU/ReLU MLPs: `act(x·W_in + b_in)`, TransformerLens `blocks.{l}.mlp.hook_post`.
//! - SoLU: `hook_post` is TransformerLens's default (weights processed with `fold_ln`): the
//!   LayerNorm of `hook_mid = pre·softmax(pre)` *without* its affine, which is folded into `W_out`.
//!   `hook_mid` is available as [`Hook::Mid`].
//! - Gated MLPs (Llama): `silu(x·W_gate)·(x·W_up)`, the signed input to the down projection.

use candle_core::{D, DType, Device, Tensor};

use crate::config::{Activation, ModelConfig, Positions};
use crate::error::ModelError;
use crate::ops;

/// Which value of an MLP layer to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    /// The neuron activation as defined in this module (TransformerLens `hook_post`).
    Post,
    /// SoLU only: the value before the MLP LayerNorm (TransformerLens `hook_mid`).
    Mid,
}

/// What one forward pass should return.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// Layers whose MLP values to return, in any order.
    pub layers: Vec<usize>,
    /// Which values per layer.
    pub hooks: Vec<Hook>,
    /// Whether to run the whole model and return next-token logits.
    pub logits: bool,
}

impl RunRequest {
    /// Neuron activations of every layer, no logits: what the recorder asks for.
    pub fn all_layers(config: &ModelConfig) -> Self {
        Self { layers: (0..config.n_layers).collect(), hooks: vec![Hook::Post], logits: false }
    }

    /// Only the logits.
    pub fn logits_only() -> Self {
        Self { layers: Vec::new(), hooks: Vec::new(), logits: true }
    }
}

/// The values one MLP layer produced, shaped [batch, position, neuron].
#[derive(Clone, Debug)]
pub struct LayerValues {
    /// The layer.
    pub layer: usize,
    /// Which value.
    pub hook: Hook,
    /// [batch, position, neuron], f32.
    pub values: Tensor,
}

/// What a forward pass returned.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// One entry per requested (layer, hook), ordered by layer then hook.
    pub layers: Vec<LayerValues>,
    /// [batch, position, vocabulary] when requested.
    pub logits: Option<Tensor>,
}

impl RunOutput {
    /// The values of one layer and hook, if they were requested.
    pub fn get(&self, layer: usize, hook: Hook) -> Option<&Tensor> {
        self.layers.iter().find(|values| values.layer == layer && values.hook == hook).map(|values| &values.values)
    }
}

/// `x·W + b` with `W` stored [in, out] and contiguous, so the product is one plain GEMM.
#[derive(Clone, Debug)]
pub(crate) struct Linear {
    pub(crate) weight: Tensor,
    pub(crate) bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let product = x.matmul(&self.weight)?;
        match &self.bias {
            Some(bias) => product.broadcast_add(bias),
            None => Ok(product),
        }
    }

    /// `x·W` without the bias, for when the bias is fused into the next op.
    pub(crate) fn forward_without_bias(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight)
    }
}

/// A normalisation layer with its parameters (LayerNormPre carries ones and zeros).
#[derive(Clone, Debug)]
pub(crate) enum Norm {
    LayerNorm { weight: Tensor, bias: Tensor, eps: f64 },
    RmsNorm { weight: Tensor, eps: f64 },
}

impl Norm {
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::LayerNorm { weight, bias, eps } => candle_nn::ops::layer_norm(x, weight, bias, *eps as f32),
            Self::RmsNorm { weight, eps } => candle_nn::ops::rms_norm(x, weight, *eps as f32),
        }
    }

    /// The parameters as the fused residual step reads them.
    fn parameters(&self) -> ops::NormParameters<'_> {
        match self {
            Self::LayerNorm { weight, bias, eps } => {
                ops::NormParameters { scale: weight, shift: Some(bias), eps: *eps }
            }
            Self::RmsNorm { weight, eps } => ops::NormParameters { scale: weight, shift: None, eps: *eps },
        }
    }

    /// LayerNorm without an affine over `width` channels: TransformerLens `LayerNormPre`.
    pub(crate) fn pre(width: usize, eps: f64, device: &Device) -> candle_core::Result<Self> {
        Ok(Self::LayerNorm {
            weight: Tensor::ones(width, DType::F32, device)?,
            bias: Tensor::zeros(width, DType::F32, device)?,
            eps,
        })
    }
}

/// A normalisation layer's parameters, read-only, for analyses that read the weights directly
/// (`crate::circuits`); [`NormWeights::apply`] is the forward pass's own normalisation.
#[derive(Clone, Debug)]
pub struct NormWeights {
    norm: Norm,
}

impl NormWeights {
    /// Whether the layer subtracts the mean over the channels first (LayerNorm, also TransformerLens
    /// `LNPre`); RMSNorm does not.
    pub fn centres(&self) -> bool {
        matches!(self.norm, Norm::LayerNorm { .. })
    }

    /// The learned scale γ, [width] (ones for `LNPre`).
    pub fn scale(&self) -> &Tensor {
        match &self.norm {
            Norm::LayerNorm { weight, .. } | Norm::RmsNorm { weight, .. } => weight,
        }
    }

    /// The learned shift β, [width]; `None` for RMSNorm (zeros for `LNPre`).
    pub fn shift(&self) -> Option<&Tensor> {
        match &self.norm {
            Norm::LayerNorm { bias, .. } => Some(bias),
            Norm::RmsNorm { .. } => None,
        }
    }

    /// Added to the variance (LayerNorm) or to the mean square (RMSNorm).
    pub fn eps(&self) -> f64 {
        match &self.norm {
            Norm::LayerNorm { eps, .. } | Norm::RmsNorm { eps, .. } => *eps,
        }
    }

    /// Normalises the rows of `x` [rows, width] exactly as the forward pass does.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.norm.forward(x)?)
    }
}

/// One MLP layer's weights as this crate stores them (cheap handles, not copies), for analyses
/// that read the weights directly (`crate::circuits`).
#[derive(Clone, Debug)]
pub struct MlpWeights {
    /// The normalisation applied to the residual stream before the MLP reads it.
    pub norm: NormWeights,
    /// [d_model, d_mlp]: column j is what neuron j reads. For gated MLPs this is the gate
    /// (`W_gate`), which decides whether the neuron fires; the up projection is not included.
    pub input: Tensor,
    /// [d_mlp], added to `x·input` before the non-linearity, when the MLP has one.
    pub input_bias: Option<Tensor>,
    /// [d_mlp, d_model]: row j is what neuron j writes per unit of its activation (SoLU: with the
    /// MLP LayerNorm's scale folded in at load, matching the `hook_post` definition above).
    pub output: Tensor,
}

/// Multi-head (or grouped-query) causal self-attention with Q, K and V in one product.
#[derive(Clone, Debug)]
pub(crate) struct Attention {
    /// [d_model, (n_heads + 2·n_kv_heads)·d_head]: all queries, then keys, then values.
    pub(crate) qkv: Linear,
    /// [n_heads·d_head, d_model].
    pub(crate) output: Linear,
}

/// The MLP's weights.
#[derive(Clone, Debug)]
pub(crate) enum Mlp {
    Plain {
        input: Linear,
        norm: Option<Norm>,
        output: Linear,
    },
    /// `input` is [d_model, 2·d_mlp]: the gate's columns, then the up projection's.
    Gated {
        input: Linear,
        output: Linear,
    },
}

/// One transformer block.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub(crate) attention_norm: Norm,
    pub(crate) attention: Attention,
    pub(crate) mlp_norm: Norm,
    pub(crate) mlp: Mlp,
}

/// Sine and cosine tables for rotary embeddings, [n_ctx, dims/2].
#[derive(Clone, Debug)]
struct RotaryTables {
    cos: Tensor,
    sin: Tensor,
    dims: usize,
    interleaved: bool,
    /// The same tables as host vectors, for the CPU kernel that splits heads.
    host: ops::RotaryHost,
}

/// A loaded decoder-only transformer.
#[derive(Clone, Debug)]
pub struct Transformer {
    config: ModelConfig,
    device: Device,
    token_embedding: Tensor,
    position_embedding: Option<Tensor>,
    blocks: Vec<Block>,
    final_norm: Norm,
    unembed: Linear,
    rotary: Option<RotaryTables>,
}

/// The parts a loader hands over; [`Transformer::new`] checks them against the config.
pub(crate) struct TransformerParts {
    pub(crate) token_embedding: Tensor,
    pub(crate) position_embedding: Option<Tensor>,
    pub(crate) blocks: Vec<Block>,
    pub(crate) final_norm: Norm,
    pub(crate) unembed: Linear,
}

impl Transformer {
    pub(crate) fn new(config: ModelConfig, parts: TransformerParts, device: Device) -> Result<Self, ModelError> {
        let rotary = match config.positions {
            Positions::Learned => None,
            Positions::Rotary { dims, base, interleaved } => {
                let (cos_values, sin_values) = rotary_tables(dims, base, config.n_ctx);
                let half = dims / 2;
                Some(RotaryTables {
                    cos: Tensor::from_slice(&cos_values, (config.n_ctx, half), &device)?,
                    sin: Tensor::from_slice(&sin_values, (config.n_ctx, half), &device)?,
                    dims,
                    interleaved,
                    host: ops::RotaryHost {
                        cos: std::sync::Arc::new(cos_values),
                        sin: std::sync::Arc::new(sin_values),
                        dims,
                        interleaved,
                    },
                })
            }
        };
        Ok(Self {
            config,
            device,
            token_embedding: parts.token_embedding,
            position_embedding: parts.position_embedding,
            blocks: parts.blocks,
            final_norm: parts.final_norm,
            unembed: parts.unembed,
            rotary,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The token embedding, [d_vocab, d_model].
    pub fn token_embedding(&self) -> &Tensor {
        &self.token_embedding
    }

    /// The unembedding, [d_model, d_vocab] (the transposed token embedding when tied). Its bias,
    /// if any (TransformerLens `b_U`), is not included: it does not depend on the residual stream.
    pub fn unembedding(&self) -> &Tensor {
        &self.unembed.weight
    }

    /// The unembedding's bias (TransformerLens `b_U`), if the model has one.
    pub(crate) fn unembedding_bias(&self) -> Option<&Tensor> {
        self.unembed.bias.as_ref()
    }

    /// The normalisation before the unembedding.
    pub fn final_norm(&self) -> NormWeights {
        NormWeights { norm: self.final_norm.clone() }
    }

    /// The MLP weights of `layer`.
    pub fn mlp_weights(&self, layer: usize) -> Result<MlpWeights, ModelError> {
        let Some(block) = self.blocks.get(layer) else {
            return Err(ModelError::Input(format!(
                "layer {layer} does not exist (the model has {})",
                self.config.n_layers
            )));
        };
        let norm = NormWeights { norm: block.mlp_norm.clone() };
        Ok(match &block.mlp {
            Mlp::Plain { input, output, .. } => MlpWeights {
                norm,
                input: input.weight.clone(),
                input_bias: input.bias.clone(),
                output: output.weight.clone(),
            },
            Mlp::Gated { input, output } => MlpWeights {
                norm,
                // The gate's columns come first (see `Mlp::Gated`).
                input: input.weight.narrow(1, 0, self.config.d_mlp)?,
                input_bias: input.bias.as_ref().map(|bias| bias.narrow(0, 0, self.config.d_mlp)).transpose()?,
                output: output.weight.clone(),
            },
        })
    }

    /// Runs token ids [batch, position] (u32) through the model and returns what `request` asks for.
    /// Stops after the MLP of the last requested layer unless logits are requested.
    pub fn run(&self, input_ids: &Tensor, request: &RunRequest) -> Result<RunOutput, ModelError> {
        let (ids, batch, positions) = self.check_input(input_ids, request)?;
        let end = match request.logits {
            true => PassEnd::FinalNorm,
            false => match request.layers.iter().copied().max() {
                Some(layer) => PassEnd::AfterMlp(layer),
                None => return Ok(RunOutput { layers: Vec::new(), logits: None }),
            },
        };
        if request.hooks.is_empty() && !request.logits {
            return Ok(RunOutput { layers: Vec::new(), logits: None });
        }
        let residual = self.embed(&ids, batch, positions, 0)?;
        let mut pass = WholeSequence { model: self, request, batch, positions, layers: Vec::new() };
        let normalized = self.forward_blocks(residual, end, &mut pass)?;
        let logits = match normalized {
            Some(normalized) => {
                Some(self.unembed.forward(&normalized)?.reshape((batch, positions, self.config.d_vocab))?)
            }
            None => None,
        };
        Ok(RunOutput { layers: pass.layers, logits })
    }

    /// The token embeddings of `ids` (flat, u32, `batch` sequences of `positions`), plus the
    /// learned position embeddings of positions `first_position..` when the model has them.
    pub(crate) fn embed(
        &self,
        ids: &Tensor,
        batch: usize,
        positions: usize,
        first_position: usize,
    ) -> candle_core::Result<Tensor> {
        let tokens = self.token_embedding.index_select(ids, 0)?;
        let Some(position_embedding) = &self.position_embedding else { return Ok(tokens) };
        let positions_used = position_embedding.narrow(0, first_position, positions)?;
        tokens
            .reshape((batch, positions, self.config.d_model))?
            .broadcast_add(&positions_used)?
            .reshape((batch * positions, self.config.d_model))
    }

    /// The residual stream `residual` [rows, d_model] through the blocks up to `end`: the
    /// arithmetic every pass shares (pending outputs added by the next fused norm, serial or
    /// parallel residual), with `pass` deciding how attention reaches its keys and what is kept of
    /// each MLP. Returns the final-normalised rows when `end` is [`PassEnd::FinalNorm`].
    pub(crate) fn forward_blocks(
        &self,
        mut residual: Tensor,
        end: PassEnd,
        pass: &mut impl BlockPass,
    ) -> Result<Option<Tensor>, ModelError> {
        let last_layer = match end {
            PassEnd::AfterMlp(layer) => layer,
            PassEnd::FinalNorm => self.config.n_layers - 1,
        };
        // Outputs not yet added to the residual stream, with their biases: the fused step that
        // computes the next normalisation adds them.
        let mut pending: Vec<(Tensor, Option<Tensor>)> = Vec::new();
        for (layer, block) in self.blocks.iter().enumerate().take(last_layer + 1) {
            let ends_pass = layer == last_layer && matches!(end, PassEnd::AfterMlp(_));
            let mlp_input = match self.config.parallel_residual {
                true => {
                    // The MLP reads the block's input, so the last block's attention would only
                    // feed layers nobody asked for.
                    let norms = match ends_pass {
                        true => vec![block.mlp_norm.parameters()],
                        false => vec![block.attention_norm.parameters(), block.mlp_norm.parameters()],
                    };
                    let (next, mut normalized) = ops::add_and_normalize(&residual, &pending, &norms)?;
                    let mlp_input = normalized.pop().expect("one output per norm");
                    residual = next;
                    pending.clear();
                    if let Some(attention_input) = normalized.pop() {
                        pending.push(pass.attend(layer, &block.attention, &attention_input)?);
                    }
                    mlp_input
                }
                false => {
                    let (next, normalized) =
                        ops::add_and_normalize(&residual, &pending, &[block.attention_norm.parameters()])?;
                    let attention_output = pass.attend(layer, &block.attention, &normalized[0])?;
                    let (next, normalized) =
                        ops::add_and_normalize(&next, &[attention_output], &[block.mlp_norm.parameters()])?;
                    residual = next;
                    pending.clear();
                    normalized.into_iter().next().expect("one output per norm")
                }
            };
            let (post, mid) = self.mlp_activations(&block.mlp, &mlp_input, pass.wants_mid(layer))?;
            pass.mlp_values(layer, &post, mid)?;
            if ends_pass {
                // The last W_out would only feed layers nobody asked for.
                return Ok(None);
            }
            let (Mlp::Plain { output, .. } | Mlp::Gated { output, .. }) = &block.mlp;
            pending.push((output.forward_without_bias(&post)?, output.bias.clone()));
        }
        let (_, mut normalized) = ops::add_and_normalize(&residual, &pending, &[self.final_norm.parameters()])?;
        Ok(normalized.pop())
    }

    /// Validates shapes, token ids, layers and hooks before any work is done; returns the ids
    /// flattened as u32 on the model's device, with the batch size and positions.
    fn check_input(&self, input_ids: &Tensor, request: &RunRequest) -> Result<(Tensor, usize, usize), ModelError> {
        let (batch, positions) = input_ids.dims2().map_err(|_| {
            ModelError::Input(format!("token ids must be [batch, position], got {:?}", input_ids.dims()))
        })?;
        if batch == 0 || positions == 0 {
            return Err(ModelError::Input("empty batch".to_owned()));
        }
        if positions > self.config.n_ctx {
            return Err(ModelError::Input(format!(
                "{positions} positions exceed the model's context of {}",
                self.config.n_ctx
            )));
        }
        let ids = input_ids.to_device(&self.device)?.to_dtype(DType::U32)?.flatten_all()?;
        let largest_id = ids.max(0)?.to_scalar::<u32>()?;
        if largest_id as usize >= self.config.d_vocab {
            return Err(ModelError::Input(format!(
                "token id {largest_id} is outside the vocabulary of {}",
                self.config.d_vocab
            )));
        }
        if let Some(&layer) = request.layers.iter().find(|&&layer| layer >= self.config.n_layers) {
            return Err(ModelError::Input(format!(
                "layer {layer} does not exist (the model has {})",
                self.config.n_layers
            )));
        }
        if request.hooks.contains(&Hook::Mid) && self.config.activation != Activation::SoluLayerNorm {
            return Err(ModelError::Input("hook_mid exists only in SoLU models".to_owned()));
        }
        Ok((ids, batch, positions))
    }

    /// Causal self-attention over `x` [batch·positions, d_model]: the output projection's product
    /// and, apart, its bias (the residual step adds both).
    fn attention(
        &self,
        attention: &Attention,
        x: &Tensor,
        batch: usize,
        positions: usize,
    ) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        let layout = self.head_layout(batch, positions);
        let heads = self.split_heads(attention, x, layout, 0)?;
        let mixed = ops::causal_attention(&heads, layout, self.attention_scale())?
            .reshape((batch * positions, layout.n_heads * layout.d_head))?;
        Ok((attention.output.forward_without_bias(&mixed)?, attention.output.bias.clone()))
    }

    /// How this model's fused Q/K/V projection of `batch` sequences of `positions` splits into heads.
    pub(crate) fn head_layout(&self, batch: usize, positions: usize) -> ops::HeadLayout {
        let ModelConfig { n_heads, n_kv_heads, d_head, .. } = self.config;
        ops::HeadLayout { batch, positions, n_heads, n_kv_heads, d_head }
    }

    /// 1/√d_head, the scale of every attention score.
    pub(crate) fn attention_scale(&self) -> f64 {
        1.0 / (self.config.d_head as f64).sqrt()
    }

    /// Q, K and V of `x` [batch·positions, d_model] with their biases, as head-major
    /// [batch, H + 2·Hkv, positions, d_head], rotary applied as at positions `first_position..`.
    pub(crate) fn split_heads(
        &self,
        attention: &Attention,
        x: &Tensor,
        layout: ops::HeadLayout,
        first_position: usize,
    ) -> candle_core::Result<Tensor> {
        let ops::HeadLayout { batch, positions, n_heads, n_kv_heads, d_head } = layout;
        if self.device.is_cpu() {
            return ops::split_heads(
                &attention.qkv.forward_without_bias(x)?,
                attention.qkv.bias.as_ref(),
                layout,
                self.rotary.as_ref().map(|rotary| &rotary.host),
                first_position,
            );
        }
        let qkv = attention.qkv.forward(x)?;
        let heads = qkv.reshape((batch, positions, n_heads + 2 * n_kv_heads, d_head))?.transpose(1, 2)?;
        let rotated = match &self.rotary {
            Some(rotary) => rotary.apply(&heads.narrow(1, 0, n_heads + n_kv_heads)?, first_position, positions)?,
            None => heads.narrow(1, 0, n_heads + n_kv_heads)?,
        };
        Tensor::cat(&[rotated, heads.narrow(1, n_heads + n_kv_heads, n_kv_heads)?], 1)?.contiguous()
    }

    /// The MLP's neuron activations (`hook_post`) and, for SoLU, `hook_mid`.
    fn mlp_activations(&self, mlp: &Mlp, x: &Tensor, want_mid: bool) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        match mlp {
            Mlp::Gated { input, .. } => {
                let gate_and_up = input.forward(x)?;
                Ok((ops::gated_silu(&gate_and_up)?, None))
            }
            Mlp::Plain { input, norm, .. } => {
                let product = input.forward_without_bias(x)?;
                if let (Some(Norm::LayerNorm { eps, .. }), false) = (norm, want_mid) {
                    // SoLU's norm has no affine (folded into W_out), so one fused pass suffices.
                    return Ok((ops::bias_solu_normalized(&product, input.bias.as_ref(), *eps)?, None));
                }
                let activated = ops::bias_activation(&product, input.bias.as_ref(), self.config.activation)?;
                match norm {
                    Some(norm) => Ok((norm.forward(&activated)?, Some(activated))),
                    None => Ok((activated, None)),
                }
            }
        }
    }
}

/// How far a pass through the blocks goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PassEnd {
    /// Stop after this layer's MLP activations: nothing later is needed.
    AfterMlp(usize),
    /// Through every block and the final normalisation.
    FinalNorm,
}

/// What distinguishes one pass through the blocks from another, beside the residual arithmetic
/// [`Transformer::forward_blocks`] states once: how attention reaches its keys (the whole
/// sequence at once, or a cache of earlier positions) and what is kept of each MLP.
pub(crate) trait BlockPass {
    /// The attention output of `layer` for its normalised input `x` [rows, d_model]: the output
    /// projection's product and, apart, its bias.
    fn attend(
        &mut self,
        layer: usize,
        attention: &Attention,
        x: &Tensor,
    ) -> Result<(Tensor, Option<Tensor>), ModelError>;

    /// Whether the pass wants SoLU's `hook_mid` of `layer` (it costs a separate pass).
    fn wants_mid(&self, _layer: usize) -> bool {
        false
    }

    /// Receives `layer`'s activations [rows, d_mlp] (and `hook_mid` when asked for).
    fn mlp_values(&mut self, _layer: usize, _post: &Tensor, _mid: Option<Tensor>) -> Result<(), ModelError> {
        Ok(())
    }
}

/// [`Transformer::run`]'s pass: causal attention over whole sequences, the requested hooks kept.
struct WholeSequence<'a> {
    model: &'a Transformer,
    request: &'a RunRequest,
    batch: usize,
    positions: usize,
    layers: Vec<LayerValues>,
}

impl WholeSequence<'_> {
    fn wants(&self, layer: usize, hook: Hook) -> bool {
        self.request.layers.contains(&layer) && self.request.hooks.contains(&hook)
    }
}

impl BlockPass for WholeSequence<'_> {
    fn attend(
        &mut self,
        _layer: usize,
        attention: &Attention,
        x: &Tensor,
    ) -> Result<(Tensor, Option<Tensor>), ModelError> {
        Ok(self.model.attention(attention, x, self.batch, self.positions)?)
    }

    fn wants_mid(&self, layer: usize) -> bool {
        self.wants(layer, Hook::Mid)
    }

    fn mlp_values(&mut self, layer: usize, post: &Tensor, mid: Option<Tensor>) -> Result<(), ModelError> {
        let shape = (self.batch, self.positions, self.model.config.d_mlp);
        if self.wants(layer, Hook::Post) {
            self.layers.push(LayerValues { layer, hook: Hook::Post, values: post.reshape(shape)? });
        }
        if let Some(mid) = mid.filter(|_| self.wants(layer, Hook::Mid)) {
            self.layers.push(LayerValues { layer, hook: Hook::Mid, values: mid.reshape(shape)? });
        }
        Ok(())
    }
}

impl RotaryTables {
    /// Rotates the first `dims` channels of `x` [batch, heads, positions, d_head], whose first
    /// position is `first_position`.
    fn apply(&self, x: &Tensor, first_position: usize, positions: usize) -> candle_core::Result<Tensor> {
        let cos = self.cos.narrow(0, first_position, positions)?;
        let sin = self.sin.narrow(0, first_position, positions)?;
        let d_head = x.dim(D::Minus1)?;
        let rotate = |part: &Tensor| match self.interleaved {
            true => candle_nn::rotary_emb::rope_i(&part.contiguous()?, &cos, &sin),
            false => candle_nn::rotary_emb::rope(&part.contiguous()?, &cos, &sin),
        };
        if self.dims == d_head {
            return rotate(x);
        }
        let rotated = rotate(&x.narrow(D::Minus1, 0, self.dims)?)?;
        let passed = x.narrow(D::Minus1, self.dims, d_head - self.dims)?;
        Tensor::cat(&[rotated, passed], D::Minus1)?.contiguous()
    }
}

/// cos and sin of position·θ^(-2i/dims), computed in f64 then rounded once.
fn rotary_tables(dims: usize, base: f64, n_ctx: usize) -> (Vec<f32>, Vec<f32>) {
    let half = dims / 2;
    let mut cos = Vec::with_capacity(n_ctx * half);
    let mut sin = Vec::with_capacity(n_ctx * half);
    for position in 0..n_ctx {
        for pair in 0..half {
            // Rounded to f32 first, as the reference implementations compute inv_freq in f32.
            let inverse_frequency = (1.0 / base.powf((2 * pair) as f64 / dims as f64)) as f32;
            let angle = position as f64 * inverse_frequency as f64;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

impl Transformer {
    /// A model of `config`'s shape with random weights (normal, σ = 0.02; norms at one), for
    /// benchmarks: dense f32 kernels run at the same speed whatever the values.
    pub fn random(config: ModelConfig, device: &Device) -> Result<Self, ModelError> {
        let ModelConfig { d_model, d_mlp, d_vocab, n_ctx, n_layers, n_heads, n_kv_heads, d_head, .. } = config;
        let normal = |rows: usize, columns: usize| Tensor::randn(0f32, 0.02, (rows, columns), device);
        let vector = |width: usize| Tensor::randn(0f32, 0.02, width, device);
        let norm = |width: usize| -> candle_core::Result<Norm> {
            Ok(match config.normalization {
                crate::config::Normalization::RmsNorm { eps } => {
                    Norm::RmsNorm { weight: Tensor::ones(width, DType::F32, device)?, eps }
                }
                crate::config::Normalization::LayerNorm { eps }
                | crate::config::Normalization::LayerNormPre { eps } => Norm::pre(width, eps, device)?,
            })
        };
        let biased = config.mlp == crate::config::MlpKind::Plain;
        let linear = |rows: usize, columns: usize| -> candle_core::Result<Linear> {
            Ok(Linear { weight: normal(rows, columns)?, bias: if biased { Some(vector(columns)?) } else { None } })
        };
        let mut blocks = Vec::with_capacity(n_layers);
        for _ in 0..n_layers {
            let mlp = match config.mlp {
                crate::config::MlpKind::Plain => Mlp::Plain {
                    input: linear(d_model, d_mlp)?,
                    norm: match config.activation {
                        Activation::SoluLayerNorm => Some(Norm::pre(d_mlp, 1e-5, device)?),
                        _ => None,
                    },
                    output: linear(d_mlp, d_model)?,
                },
                crate::config::MlpKind::Gated => {
                    Mlp::Gated { input: linear(d_model, 2 * d_mlp)?, output: linear(d_mlp, d_model)? }
                }
            };
            blocks.push(Block {
                attention_norm: norm(d_model)?,
                attention: Attention {
                    qkv: linear(d_model, (n_heads + 2 * n_kv_heads) * d_head)?,
                    output: linear(n_heads * d_head, d_model)?,
                },
                mlp_norm: norm(d_model)?,
                mlp,
            });
        }
        let parts = TransformerParts {
            token_embedding: normal(d_vocab, d_model)?,
            position_embedding: match config.positions {
                Positions::Learned => Some(normal(n_ctx, d_model)?),
                Positions::Rotary { .. } => None,
            },
            blocks,
            final_norm: norm(d_model)?,
            unembed: Linear { weight: normal(d_model, d_vocab)?, bias: None },
        };
        Self::new(config, parts, device.clone())
    }
}
