//! What `encrypt` and `decrypt` share: one output file per input file in one folder, and
//! one summary of a batch of files (exit 3 when some failed, 1 when all did).

use super::EXIT_PARTIAL;
use anyhow::{bail, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `<out>/<file name>` for each input; a second input with the same name is refused rather
/// than overwriting the first one's output.
pub(super) fn plan_outputs(inputs: &[PathBuf], out: &Path) -> Vec<(PathBuf, Result<PathBuf, String>)> {
    let mut seen = HashSet::new();
    inputs
        .iter()
        .map(|i| {
            let target = match i.file_name() {
                None => Err("not a file name".to_string()),
                Some(n) if !seen.insert(n.to_os_string()) => {
                    Err(format!("another input has the same file name {}", n.to_string_lossy()))
                }
                Some(n) => Ok(out.join(n)),
            };
            (i.clone(), target)
        })
        .collect()
}

/// Prints the failures and a summary; exit 3 when some failed, 1 when all did.
pub(super) fn report(verb: &str, total: usize, failed: &[(PathBuf, anyhow::Error)], out: &Path) -> Result<ExitCode> {
    for (input, e) in failed {
        eprintln!("error: {}: {e:#}", input.display());
    }
    println!("{verb} {} of {total} file(s) into {}", total - failed.len(), out.display());
    if failed.len() == total && total > 0 {
        bail!("every file failed");
    }
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTIAL) })
}
