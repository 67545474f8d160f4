//! CPU accounting from /proc: a process's CPU time in ns from the
//! scheduler's own accounting (`/proc/<pid>/task/*/schedstat`: exact, where
//! utime/stime are sampled at the clock tick), its user and total ticks
//! (`/proc/<pid>/stat`), and how busy cores 0 and 1 were (`/proc/stat`).

use std::path::Path;

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// The fields of a `/proc/<pid>/stat` line after `pid (comm) `, from `state`.
fn stat_fields(proc_dir: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let rest = text.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    rest.split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect()
}

fn field(f: &[u64], i: usize) -> u64 {
    f.get(i).copied().unwrap_or(0)
}

/// utime + stime of `pid`, in ticks.
pub fn ticks(pid: u32) -> u64 {
    let f = stat_fields(&Path::new("/proc").join(pid.to_string()));
    field(&f, 11) + field(&f, 12)
}

/// utime of `pid`, in ticks.
pub fn user_ticks(pid: u32) -> u64 {
    field(&stat_fields(&Path::new("/proc").join(pid.to_string())), 11)
}

/// cutime + cstime of this process: its finished, reaped children (wrk).
pub fn children_ticks() -> u64 {
    let f = stat_fields(Path::new("/proc/self"));
    field(&f, 13) + field(&f, 14)
}

/// CPU time of every thread of `pid`, in ns (schedstat's first field).
pub fn cpu_ns(pid: u32) -> u64 {
    let dir = Path::new("/proc").join(pid.to_string()).join("task");
    let Ok(tasks) = std::fs::read_dir(dir) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

/// Ticks cores 0 and 1 spent in user, nice, system and steal (`/proc/stat`).
pub fn cores_busy() -> u64 {
    cores_busy_in(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
}

/// [`cores_busy`] from the text of `/proc/stat`.
pub fn cores_busy_in(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("cpu0 ") || l.starts_with("cpu1 "))
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            field(&f, 0) + field(&f, 1) + field(&f, 2) + field(&f, 7)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_0_and_1_count_user_nice_system_and_steal() {
        let t = "cpu  9 9 9 9 9 9 9 9\ncpu0 1 2 3 100 5 6 7 8 0 0\ncpu1 10 20 30 100 5 6 7 80\ncpu2 1 1 1 1 1 1 1 1\n";
        assert_eq!(cores_busy_in(t), 1 + 2 + 3 + 8 + 10 + 20 + 30 + 80);
    }

    #[test]
    fn this_process_has_cpu_time_and_ticks() {
        let me = std::process::id();
        let spin: u64 = (0..2_000_000u64).fold(0, |a, x| a.wrapping_add(x * x));
        assert_ne!(spin, 1);
        assert!(cpu_ns(me) > 0);
        // user time first: both only grow, so the later total cannot be below
        // it (read the other way round, other test threads' CPU made it flaky)
        let user = user_ticks(me);
        assert!(ticks(me) >= user);
        assert!(clk_tck() > 0);
    }
}
