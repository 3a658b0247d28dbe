//! `muster-codegen generate <model.json> <out.rs>` writes the wire module;
//! `muster-codegen check <model.json> <out.rs>` fails if the file is not what the model generates.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: muster-codegen generate|check <model.smithy.json> <out.rs>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, model, out] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(command, Path::new(model), Path::new(out)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("muster-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &str, model: &Path, out: &Path) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(model)
        .map_err(|e| format!("cannot read {}: {e}", model.display()))?;
    let source_name = model.file_name().map_or_else(
        || model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let config_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir().map_err(|e| e.to_string())?,
    };
    let code = muster_codegen::generate_formatted(&text, &source_name, &config_dir)
        .map_err(|e| e.to_string())?;
    match command {
        "generate" => {
            std::fs::write(out, &code)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            eprintln!("wrote {} ({} lines)", out.display(), code.lines().count());
            Ok(ExitCode::SUCCESS)
        }
        "check" => {
            let current = match std::fs::read_to_string(out) {
                Ok(s) => s,
                Err(e) => return Err(format!("cannot read {}: {e}", out.display())),
            };
            if current == code {
                eprintln!("{} is up to date with {}", out.display(), model.display());
                Ok(ExitCode::SUCCESS)
            } else {
                let (line, expected, found) = first_difference(&code, &current);
                eprintln!(
                    "{} is out of date with {}: regenerating would change it (first difference at line {line}:\n  generated: {expected}\n  committed: {found})\n\
                     run: cargo run -p muster-codegen -- generate {} {}",
                    out.display(),
                    model.display(),
                    model.display(),
                    out.display()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}

/// The 1-based line number and the two differing lines (`<end of file>` past the end).
fn first_difference<'a>(a: &'a str, b: &'a str) -> (usize, &'a str, &'a str) {
    let mut la = a.lines();
    let mut lb = b.lines();
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (None, None) => return (n, "<end of file>", "<end of file>"),
            (x, y) => {
                return (
                    n,
                    x.unwrap_or("<end of file>"),
                    y.unwrap_or("<end of file>"),
                );
            }
        }
    }
}
