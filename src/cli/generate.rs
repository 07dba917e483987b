//! `firedrill completions SHELL`, `firedrill man` and `firedrill schema`: shell completions and a
//! roff man page generated from the clap definition in `args.rs` (the same source as `--help`, so they cannot
//! drift from it), and the scenario format's JSON Schema (from `scenario/keys.rs`).

use std::io::Write;

use clap::CommandFactory;

use super::args::Args;
use super::errors::ExitStatus;

/// Write the completion script for `shell` to stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> ExitStatus {
    let mut command = Args::command();
    clap_complete::generate(shell, &mut command, "firedrill", &mut std::io::stdout());
    ExitStatus::Success
}

/// Write the scenario format's JSON Schema to stdout.
pub(super) fn schema() -> ExitStatus {
    let schema = crate::scenario::scenario_schema();
    let mut text = serde_json::to_string_pretty(&schema).expect("a JSON value serializes");
    text.push('\n');
    write_stdout(text.as_bytes(), "the schema")
}

/// Write the man page (`firedrill.1`, every subcommand in it) to stdout.
pub(super) fn man() -> ExitStatus {
    write_stdout(&man_page(), "the man page")
}

/// Write to stdout; a closed pipe (`| head`) is not worth a panic.
fn write_stdout(bytes: &[u8], what: &str) -> ExitStatus {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitStatus::Success,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitStatus::Success,
        Err(error) => {
            eprintln!("error: failed to write {what}: {error}");
            ExitStatus::Error
        }
    }
}

/// `firedrill.1`: the top-level page followed by a section per subcommand.
fn man_page() -> Vec<u8> {
    let command = Args::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(command.clone());
    man.render(&mut out).expect("rendering into memory cannot fail");
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("firedrill {}", sub.get_name());
        let _ = writeln!(out, ".SH \"{}\"", name.to_uppercase());
        let man = clap_mangen::Man::new(sub.clone().bin_name(name));
        let mut section = Vec::new();
        let _ = man.render_description_section(&mut section);
        let _ = man.render_synopsis_section(&mut section);
        let _ = man.render_options_section(&mut section);
        // Each part renders its own `.SH`; inside a subcommand's section they are subsections.
        for line in String::from_utf8_lossy(&section).lines() {
            let line =
                line.strip_prefix(".SH ").map_or(line.to_owned(), |rest| format!(".SS {rest}"));
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_covers_every_subcommand() {
        let page = String::from_utf8(man_page()).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{}", &page[..80]);
        for sub in Args::command().get_subcommands().filter(|s| s.get_name() != "help") {
            let heading = format!(".SH \"FIREDRILL {}\"", sub.get_name().to_uppercase());
            assert!(page.contains(&heading), "{heading} missing");
        }
        assert!(page.contains("\\-\\-format"), "options are listed");
    }

    #[test]
    fn completions_name_the_subcommands() {
        for shell in
            [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish]
        {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "firedrill", &mut out);
            let script = String::from_utf8(out).unwrap();
            for sub in ["validate", "plan", "run", "schema", "completions"] {
                assert!(script.contains(sub), "{shell}: {sub}");
            }
        }
    }
}
