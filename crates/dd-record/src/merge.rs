//! Merging shard recordings: top-k selections, band samples, histograms, moments and token sums all
//! combine exactly, so the merge of shards `0/n … n−1/n` equals one run over the whole dataset.

use std::path::Path;

use crate::error::RecordError;
use crate::recording::Recording;

/// Loads the shard states of shard databases (`record --shard i/n`) and merges them into one
/// recording.
///
/// The shards must come from runs with the same settings and together cover every shard `i/n`
/// exactly once.
pub fn merge_shards(paths: &[&Path]) -> Result<Recording, RecordError> {
    let Some((first_path, rest)) = paths.split_first() else {
        return Err(RecordError::InvalidConfig("merge needs at least one shard".to_owned()));
    };
    let mut merged = Recording::load_from_database(first_path)?;
    let n_shards = merged.state.shard.1;
    let mut seen = vec![false; n_shards as usize];
    seen[merged.state.shard.0 as usize] = true;
    for path in rest {
        let shard = Recording::load_from_database(path)?;
        let (index, count) = shard.state.shard;
        if shard.state.settings != merged.state.settings || count != n_shards {
            return Err(RecordError::SettingsMismatch {
                what: format!("shard {}", path.display()),
                theirs: format!("{} shards={count}", shard.state.settings),
                ours: format!("{} shards={n_shards}", merged.state.settings),
                hint: "merge only shards of one run",
            });
        }
        if std::mem::replace(&mut seen[index as usize], true) {
            return Err(RecordError::InvalidConfig(format!(
                "shard {index}/{count} is given twice ({})",
                path.display()
            )));
        }
        let state = &mut merged.state;
        state.accumulator.merge(shard.state.accumulator);
        state.contexts.merge(&shard.state.contexts);
        state.contexts_recorded += shard.state.contexts_recorded;
        state.tokens_recorded += shard.state.tokens_recorded;
        state.next_context = state.next_context.max(shard.state.next_context);
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(RecordError::InvalidConfig(format!("shard {missing}/{n_shards} is missing")));
    }
    merged.state.shard = (0, 1);
    let keep = merged.selected_contexts();
    merged.state.contexts.retain(&keep);
    Ok(merged)
}
