//! Who owns a run: the harness process, named by pid and start time so that a reused pid is not
//! mistaken for the owner. Reads `/proc` only; talks to no one.

use std::sync::OnceLock;

/// The `firedrill.owner` label value for this process: `PID:STARTTIME`.
pub(crate) fn current_owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        // Without a readable `/proc` the start time is 0; the pid alone still identifies us
        // while we run, and `owner_alive` treats a 0 start time as "pid only".
        let start = start_time(pid).unwrap_or(0);
        format!("{pid}:{start}")
    })
}

/// Whether the process named by an owner label still runs. A malformed label counts as dead:
/// nothing live wrote it.
pub(crate) fn owner_alive(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once(':') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    match start_time(pid) {
        Some(actual) => start == 0 || actual == start,
        None => false,
    }
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot), or `None` when the
/// process does not exist.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// The command name (field 2) is in parentheses and may itself contain spaces and parentheses,
/// so fields are counted from the last `)`: field 3 is the first after it.
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_time_after_tricky_command_names() {
        let stat = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let owner = current_owner();
        assert!(owner_alive(owner), "{owner}");
        let pid = std::process::id();
        let start = start_time(pid).expect("own stat readable");
        assert!(!owner_alive(&format!("{pid}:{}", start + 1)));
    }

    #[test]
    fn missing_and_malformed_owners_are_dead() {
        // Above any pid_max Linux allows (2^22).
        assert!(!owner_alive("999999999:1"));
        assert!(!owner_alive("nonsense"));
        assert!(!owner_alive(""));
    }
}
