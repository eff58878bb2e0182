//! Which GPUs a run counts. Every GPU the source sees is recorded; the counted ones are those
//! whose power is charged to the engine's tokens and whose means the step figures show. A node
//! with 8 GPUs serving a TP 2 engine must not average 8 GPUs nor charge their power to it.
//!
//! `--gpus 0,1` (NVML indices), `--gpus GPU-…,GPU-…` (UUIDs) or `--gpus 00000000:18:00.0,…`
//! (PCI bus ids) choose. NVML's index is not CUDA's device index (`CUDA_VISIBLE_DEVICES` and
//! `CUDA_DEVICE_ORDER` renumber), so UUIDs or bus ids are the safe way to name a GPU. Without
//! `--gpus`, the GPUs running the engine's processes count: NVML's running compute processes
//! per GPU, kept to the engine's own process tree where the engine is local and its listening
//! process can be found ([`local_listener_pids`]), else any compute process. A source that
//! cannot list processes (DCGM), or a node where no GPU runs one, counts every GPU.

use std::collections::BTreeSet;

use crate::GpuInfo;

/// What `--gpus` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelection {
    Indices(Vec<u32>),
    /// UUIDs (`GPU-…`) or PCI bus ids (`00000000:18:00.0`), as the inventory spells them.
    Ids(Vec<String>),
}

impl GpuSelection {
    /// `0,1` or `GPU-…,GPU-…` or `00000000:18:00.0,…`; not a mix of indices and ids.
    pub fn parse(s: &str) -> Result<GpuSelection, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "--gpus {s:?}: expected a comma-separated list such as 0,1 or GPU-UUID,GPU-UUID"
            ));
        }
        let indices: Result<Vec<u32>, _> = parts.iter().map(|p| p.parse::<u32>()).collect();
        match indices {
            Ok(i) => Ok(GpuSelection::Indices(i)),
            Err(_) if parts.iter().all(|p| p.parse::<u32>().is_err()) => Ok(GpuSelection::Ids(
                parts.iter().map(|p| p.to_string()).collect(),
            )),
            Err(_) => Err(format!(
                "--gpus {s:?}: give either NVML indices or UUIDs / PCI bus ids, not both"
            )),
        }
    }
}

impl std::fmt::Display for GpuSelection {
    /// As `--gpus` takes it: `0,1` or `GPU-…,GPU-…`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = match self {
            GpuSelection::Indices(i) => i.iter().map(u32::to_string).collect(),
            GpuSelection::Ids(ids) => ids.clone(),
        };
        f.write_str(&parts.join(","))
    }
}

/// The compute processes NVML lists on one GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuProcesses {
    pub gpu_index: u32,
    pub pids: Vec<u32>,
}

/// How the counted GPUs were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CountedBy {
    /// `--gpus`.
    Selection,
    /// The GPUs running the engine's processes.
    EngineProcesses,
    /// The GPUs running any compute process (the engine's could not be told apart).
    ComputeProcesses,
    /// Every GPU: no selection and no process list, or no GPU ran a process.
    All,
}

fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The indices `sel` names in `inventory`; an index or id it lacks is an error that says what
/// the node has.
fn selected(inventory: &[GpuInfo], sel: &GpuSelection) -> Result<Vec<u32>, String> {
    let known = || {
        inventory
            .iter()
            .map(|g| format!("{} ({})", g.index, g.uuid.as_deref().unwrap_or("no UUID")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let one = |want: &dyn Fn(&GpuInfo) -> bool, what: &str| {
        inventory
            .iter()
            .find(|g| want(g))
            .map(|g| g.index)
            .ok_or_else(|| format!("--gpus: no GPU {what} here; this node has {}", known()))
    };
    let mut out = match sel {
        GpuSelection::Indices(i) => i
            .iter()
            .map(|i| one(&|g| g.index == *i, &i.to_string()))
            .collect::<Result<Vec<_>, _>>()?,
        GpuSelection::Ids(ids) => ids
            .iter()
            .map(|id| {
                one(
                    &|g| {
                        g.uuid.as_deref().is_some_and(|u| same_id(u, id))
                            || g.pci_bus_id.as_deref().is_some_and(|b| same_id(b, id))
                    },
                    id,
                )
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The GPUs a run counts, and how they were chosen. `processes` is `None` where the source
/// cannot list them; `engine_pids` the engine's process tree where it is local and found.
pub fn counted(
    inventory: &[GpuInfo],
    selection: Option<&GpuSelection>,
    processes: Option<&[GpuProcesses]>,
    engine_pids: Option<&BTreeSet<u32>>,
) -> Result<(Vec<u32>, CountedBy), String> {
    if let Some(sel) = selection {
        return Ok((selected(inventory, sel)?, CountedBy::Selection));
    }
    let all = || inventory.iter().map(|g| g.index).collect::<Vec<_>>();
    let Some(processes) = processes else {
        return Ok((all(), CountedBy::All));
    };
    let running = |keep: &dyn Fn(u32) -> bool| -> Vec<u32> {
        let mut v: Vec<u32> = processes
            .iter()
            .filter(|p| p.pids.iter().any(|pid| keep(*pid)))
            .map(|p| p.gpu_index)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if let Some(mine) = engine_pids.filter(|p| !p.is_empty()) {
        let v = running(&|pid| mine.contains(&pid));
        if !v.is_empty() {
            return Ok((v, CountedBy::EngineProcesses));
        }
    }
    let v = running(&|_| true);
    if v.is_empty() {
        Ok((all(), CountedBy::All))
    } else {
        Ok((v, CountedBy::ComputeProcesses))
    }
}

/// The inventory with each GPU's compute processes at the run's start, and of those the ones
/// outside the engine's process tree where it was found (`engine_pids`): what the nightly
/// attribution names as other processes on the GPU. `processes` is `None` where the source
/// cannot list them; a GPU it does not mention runs none.
pub fn with_processes(
    inventory: Vec<GpuInfo>,
    processes: Option<&[GpuProcesses]>,
    engine_pids: Option<&BTreeSet<u32>>,
) -> Vec<GpuInfo> {
    let Some(processes) = processes else {
        return inventory;
    };
    let mine = engine_pids.filter(|p| !p.is_empty());
    inventory
        .into_iter()
        .map(|g| {
            let mut pids: Vec<u32> = processes
                .iter()
                .filter(|p| p.gpu_index == g.index)
                .flat_map(|p| p.pids.iter().copied())
                .collect();
            pids.sort_unstable();
            pids.dedup();
            let other_pids =
                mine.map(|m| pids.iter().copied().filter(|p| !m.contains(p)).collect());
            GpuInfo {
                compute_pids: Some(pids),
                other_pids,
                ..g
            }
        })
        .collect()
}

/// The process listening on TCP `port` on this machine and every process below it (a vLLM or
/// SGLang server forks its GPU workers), from `/proc`. Empty where `/proc` is not there or the
/// listener is another user's.
pub fn local_listener_pids(port: u16) -> BTreeSet<u32> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return BTreeSet::new();
    }
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let mut tree: BTreeSet<u32> = pids
        .iter()
        .copied()
        .filter(|pid| holds_socket(*pid, &inodes))
        .collect();
    // Descendants: add children until nothing changes (process trees are shallow).
    let parents: Vec<(u32, u32)> = pids
        .iter()
        .filter_map(|pid| Some((*pid, parent_pid(*pid)?)))
        .collect();
    loop {
        let before = tree.len();
        for (pid, ppid) in &parents {
            if tree.contains(ppid) {
                tree.insert(*pid);
            }
        }
        if tree.len() == before || tree.is_empty() {
            return tree;
        }
    }
}

/// Socket inodes in LISTEN state on `port`, from `/proc/net/tcp` and `tcp6`.
fn listening_inodes(port: u16) -> BTreeSet<String> {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    // local_address, ..., st (0A = LISTEN), ..., inode (field 9)
                    (f.len() > 9 && f[1].ends_with(&want) && f[3] == "0A").then(|| f[9].to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn holds_socket(pid: u32, inodes: &BTreeSet<String>) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .any(|i| inodes.contains(&i))
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u32) -> Vec<GpuInfo> {
        (0..n)
            .map(|index| GpuInfo {
                index,
                uuid: Some(format!("GPU-{index:08x}-aaaa")),
                pci_bus_id: Some(format!("00000000:{:02X}:00.0", 0x18 + index)),
                ..GpuInfo::default()
            })
            .collect()
    }

    fn procs(list: &[(u32, &[u32])]) -> Vec<GpuProcesses> {
        list.iter()
            .map(|(g, p)| GpuProcesses {
                gpu_index: *g,
                pids: p.to_vec(),
            })
            .collect()
    }

    #[test]
    fn gpus_flag_by_index_uuid_or_bus_id() {
        let inv = node(8);
        let sel = GpuSelection::parse("1, 0").unwrap();
        assert_eq!(sel.to_string(), "1,0");
        assert_eq!(
            counted(&inv, Some(&sel), None, None).unwrap(),
            (vec![0, 1], CountedBy::Selection)
        );
        let sel = GpuSelection::parse("gpu-00000005-AAAA,00000000:1A:00.0").unwrap();
        assert_eq!(counted(&inv, Some(&sel), None, None).unwrap().0, [2, 5]);
        let err = counted(&inv, Some(&GpuSelection::parse("9").unwrap()), None, None).unwrap_err();
        assert!(err.contains("no GPU 9 here") && err.contains("7 (GPU-00000007-aaaa)"));
        assert!(GpuSelection::parse("0,GPU-x").is_err());
        assert!(GpuSelection::parse("0,,1").is_err());
    }

    #[test]
    fn each_gpu_keeps_its_processes_and_those_beside_the_engine() {
        // The engine (100, its worker 101) on GPUs 0 and 1; another job (555) on GPU 1.
        let list = procs(&[(0, &[101]), (1, &[555, 101])]);
        let engine = BTreeSet::from([100, 101]);
        let inv = with_processes(node(3), Some(&list), Some(&engine));
        let got: Vec<_> = inv
            .iter()
            .map(|g| (g.compute_pids.clone(), g.other_pids.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(vec![101]), Some(vec![])),
                (Some(vec![101, 555]), Some(vec![555])),
                (Some(vec![]), Some(vec![])),
            ]
        );
        // The engine's tree unknown: the processes, none told apart.
        let inv = with_processes(node(2), Some(&list), None);
        assert_eq!(inv[1].compute_pids, Some(vec![101, 555]));
        assert_eq!(inv[1].other_pids, None);
        // A source that cannot list them: unknown, not "none".
        let inv = with_processes(node(2), None, Some(&engine));
        assert_eq!(
            (inv[0].compute_pids.clone(), inv[0].other_pids.clone()),
            (None, None)
        );
    }

    #[test]
    fn by_default_the_gpus_running_the_engine_count() {
        // TP 2 engine (pids 100, 101 under 99) on GPUs 2 and 3; another job on GPU 5.
        let inv = node(8);
        let p = procs(&[(2, &[100]), (3, &[101]), (5, &[4242])]);
        let engine: BTreeSet<u32> = [99, 100, 101].into();
        assert_eq!(
            counted(&inv, None, Some(&p), Some(&engine)).unwrap(),
            (vec![2, 3], CountedBy::EngineProcesses)
        );
        // The engine is remote or not found: any compute process.
        assert_eq!(
            counted(&inv, None, Some(&p), None).unwrap(),
            (vec![2, 3, 5], CountedBy::ComputeProcesses)
        );
    }

    #[test]
    fn without_process_lists_or_processes_every_gpu_counts() {
        let inv = node(2);
        assert_eq!(
            counted(&inv, None, None, None).unwrap(),
            (vec![0, 1], CountedBy::All)
        );
        assert_eq!(
            counted(&inv, None, Some(&procs(&[(0, &[]), (1, &[])])), None).unwrap(),
            (vec![0, 1], CountedBy::All)
        );
    }

    #[test]
    fn the_listener_of_a_local_port_and_its_children_are_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let pids = local_listener_pids(port);
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert!(pids.contains(&std::process::id()), "{pids:?}");
        }
        drop(l);
        assert!(!local_listener_pids(port).contains(&std::process::id()));
    }
}
