//! `cairn devnet`: a whole chain on this machine, one OS process per node, on loopback.
//!
//! [`write`] makes a home per node under the devnet directory (a fresh key, the shared
//! `genesis.json`, a `config.toml` with loopback ports) and a `devnet.json` manifest;
//! [`Supervisor`] starts `cairn node --home …` for each, files each node's output under its home
//! (`node.log`) with a `[name]` prefix, restarts a node that died when asked to, and stops every
//! child by pid (SIGTERM, then SIGKILL after a grace period).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_ledger::genesis::Params;
use serde::{Deserialize, Serialize};

use crate::chain::{ChainFile, Member};
use crate::home::{Home, NetworkProfile, NodeRole, NodeSettings};
use crate::run::check_free;
use crate::{keyfile, DaemonError};

/// A base port with `count` free loopback ports above it, below the kernel's ephemeral range
/// (nodes' outgoing connections take ephemeral ports, and one could take a port a node has yet
/// to bind), searched from a start that depends on `salt` (a process id, say) so that
/// concurrent callers spread out. `None` when no such range is free.
pub fn free_base_port(count: u16, salt: u32) -> Option<u16> {
    const FLOOR: u16 = 20_000;
    let count = count.max(1);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let span = low.saturating_sub(FLOOR).max(count);
    let slots = (span / count).max(1);
    let start = (salt % u32::from(slots)) as u16 * count;
    (0..slots)
        .map(|slot| FLOOR + (start + slot * count) % (slots * count))
        .filter(|base| base.checked_add(count).is_some_and(|end| end <= low))
        .find(|base| {
            (0..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        })
}

/// A devnet's shape.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// Validators (consensus and validation).
    pub validators: usize,
    /// Standby validators: validator nodes with a balance but no stake at genesis, which
    /// observe consensus until they stand (`cairn validator join`) and are elected.
    pub standby: usize,
    /// Trainers.
    pub trainers: usize,
    /// Blocks per consensus epoch (0: the genesis set for the chain's life).
    pub epoch_length: u64,
    /// Directory holding every node's home.
    pub dir: PathBuf,
    /// First port: node `i` listens for p2p on `base_port + 2i` and serves its API on the next.
    pub base_port: u16,
    /// Chain id.
    pub chain_id: u64,
    /// Datasets the chain serves.
    pub datasets: Vec<String>,
    /// Pause before each proposal.
    pub block_interval_ms: u64,
    /// Stake of each validator.
    pub stake: u128,
    /// Balance of every member.
    pub balance: u128,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            validators: 4,
            standby: 0,
            trainers: 8,
            epoch_length: DEFAULT_EPOCH_LENGTH,
            dir: PathBuf::from("cairn-devnet"),
            base_port: 30300,
            chain_id: 1,
            datasets: vec!["digits".into(), "mnist_5k".into()],
            block_interval_ms: 400,
            stake: 10_000,
            balance: 10_000_000,
        }
    }
}

/// A devnet's epoch: about 20 s at the default block interval, so a validator that stands is
/// voting within a minute.
pub const DEFAULT_EPOCH_LENGTH: u64 = 50;

/// One node of a devnet, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetNode {
    /// Its name (and its home's folder name).
    pub name: String,
    /// Validator or trainer.
    pub role: NodeRole,
    /// Its home.
    pub home: PathBuf,
    /// Its p2p address.
    pub p2p: SocketAddr,
    /// Its API address.
    pub http: SocketAddr,
}

/// `devnet.json`: the devnet's nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The chain id.
    pub chain_id: u64,
    /// Every node, validators first.
    pub nodes: Vec<DevnetNode>,
}

impl Manifest {
    /// `DIR/devnet.json`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("devnet.json")
    }

    /// Reads `DIR/devnet.json`.
    pub fn read(dir: &Path) -> Result<Self, DaemonError> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| DaemonError::Io(format!("{}: {error}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|error| DaemonError::Home(format!("{} is corrupt: {error}", path.display())))
    }
}

fn port(base: u16, offset: usize) -> Result<u16, DaemonError> {
    u16::try_from(usize::from(base) + offset)
        .map_err(|_| DaemonError::Settings(format!("port {base} + {offset} is above 65535")))
}

/// Writes a fresh devnet under `config.dir` (which must not hold one): homes, keys, the chain
/// file and the manifest. Every port is checked free first.
pub fn write(config: &DevnetConfig) -> Result<Manifest, DaemonError> {
    if Manifest::path(&config.dir).exists() {
        return Err(DaemonError::Exists(format!(
            "{} (a devnet is there: pass --keep to run it again, or remove the directory)",
            Manifest::path(&config.dir).display()
        )));
    }
    if config.validators == 0 {
        return Err(DaemonError::Settings("a devnet needs a validator".into()));
    }
    if config.standby > 0 && config.epoch_length == 0 {
        return Err(DaemonError::Settings(
            "standby validators need epochs (an epoch length above 0)".into(),
        ));
    }
    let mut nodes = Vec::new();
    let voters = config.validators;
    let validators = voters + config.standby;
    let count = validators + config.trainers;
    for i in 0..count {
        let (role, name) = if i < voters {
            (NodeRole::Validator, format!("validator-{i}"))
        } else if i < validators {
            (NodeRole::Validator, format!("standby-{}", i - voters))
        } else {
            (NodeRole::Trainer, format!("trainer-{}", i - validators))
        };
        let p2p = SocketAddr::from(([127, 0, 0, 1], port(config.base_port, 2 * i)?));
        let http = SocketAddr::from(([127, 0, 0, 1], port(config.base_port, 2 * i + 1)?));
        check_free(&format!("{name} p2p"), p2p)?;
        check_free(&format!("{name} http"), http)?;
        nodes.push(DevnetNode {
            home: config.dir.join(&name),
            name,
            role,
            p2p,
            http,
        });
    }
    std::fs::create_dir_all(&config.dir)
        .map_err(|error| DaemonError::Io(format!("{}: {error}", config.dir.display())))?;
    let mut validators = Vec::new();
    let mut accounts = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        std::fs::create_dir_all(&node.home)
            .map_err(|error| DaemonError::Io(format!("{}: {error}", node.home.display())))?;
        let home = Home::new(&node.home);
        let key = keyfile::generate_into(&home.key())?;
        let parts = keyfile::public_parts(&key);
        let validator = i < voters;
        let member = Member {
            name: node.name.clone(),
            public_key: parts.public_key,
            stake: if validator { config.stake } else { 0 },
            balance: config.balance,
            p2p: validator.then(|| node.p2p.to_string()),
        };
        if validator {
            validators.push(member);
        } else {
            accounts.push(member);
        }
        home.write_settings(&NodeSettings {
            role: node.role,
            listen: node.p2p,
            external: Some(node.p2p),
            http: Some(node.http),
            bootstrappers: Vec::new(),
            network: NetworkProfile::Local,
            block_interval_ms: config.block_interval_ms,
            ..NodeSettings::default()
        })?;
    }
    let defaults = Params::default();
    let params = Params {
        epoch_length: config.epoch_length,
        // Stake stays bonded at least until the epoch it validated in ends.
        unbond_delay: defaults
            .unbond_delay
            .max(config.epoch_length.saturating_mul(2)),
        ..defaults
    };
    let chain = ChainFile {
        chain_id: config.chain_id,
        params,
        datasets: config.datasets.clone(),
        validators,
        accounts,
    };
    chain.check()?;
    for node in &nodes {
        chain.write_json(&Home::new(&node.home).genesis())?;
    }
    let manifest = Manifest {
        chain_id: config.chain_id,
        nodes,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|error| DaemonError::Io(error.to_string()))?;
    std::fs::write(Manifest::path(&config.dir), text + "\n").map_err(|error| {
        DaemonError::Io(format!(
            "{}: {error}",
            Manifest::path(&config.dir).display()
        ))
    })?;
    Ok(manifest)
}

/// Checks that every port of a kept devnet is free before it starts again.
pub fn check_ports(manifest: &Manifest) -> Result<(), DaemonError> {
    for node in &manifest.nodes {
        check_free(&format!("{} p2p", node.name), node.p2p)?;
        check_free(&format!("{} http", node.name), node.http)?;
    }
    Ok(())
}

struct Running {
    node: DevnetNode,
    child: Option<Child>,
    started: Instant,
    restarts: u32,
    exit: Option<String>,
}

/// Runs a devnet's nodes as child processes.
pub struct Supervisor {
    binary: PathBuf,
    running: Vec<Running>,
    echo: bool,
    env: Vec<(String, String)>,
}

/// One row of the status table.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Its role.
    pub role: NodeRole,
    /// Its process id while it runs.
    pub pid: Option<u32>,
    /// Restarts so far.
    pub restarts: u32,
    /// Its height (from its API), if it answered.
    pub height: Option<u64>,
    /// Its state root (hex), if it answered.
    pub state_root: Option<String>,
    /// How it last exited, if it did.
    pub exit: Option<String>,
}

fn pump(
    name: String,
    source: impl std::io::Read + Send + 'static,
    log: Arc<Mutex<std::fs::File>>,
    echo: bool,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            let prefixed = format!("[{name}] {line}\n");
            if let Ok(mut file) = log.lock() {
                let _ = file.write_all(prefixed.as_bytes());
            }
            if echo {
                let _ = std::io::stdout().lock().write_all(prefixed.as_bytes());
            }
        }
    });
}

impl Supervisor {
    /// A supervisor starting `binary` (the `cairn` executable) for each node of `manifest`;
    /// `echo` also prints every log line; `env` is added to each child's environment.
    pub fn new(
        binary: PathBuf,
        manifest: &Manifest,
        echo: bool,
        env: Vec<(String, String)>,
    ) -> Self {
        Self {
            binary,
            running: manifest
                .nodes
                .iter()
                .map(|node| Running {
                    node: node.clone(),
                    child: None,
                    started: Instant::now(),
                    restarts: 0,
                    exit: None,
                })
                .collect(),
            echo,
            env,
        }
    }

    /// Starts node `index` (again).
    pub fn start(&mut self, index: usize) -> Result<(), DaemonError> {
        let echo = self.echo;
        let entry = &mut self.running[index];
        let log_path = entry.node.home.join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|error| DaemonError::Io(format!("{}: {error}", log_path.display())))?;
        let log = Arc::new(Mutex::new(log));
        let mut command = Command::new(&self.binary);
        command
            .arg("node")
            .arg("--home")
            .arg(&entry.node.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().map_err(|error| {
            DaemonError::Io(format!("starting {}: {error}", self.binary.display()))
        })?;
        if let Some(out) = child.stdout.take() {
            pump(entry.node.name.clone(), out, log.clone(), echo);
        }
        if let Some(err) = child.stderr.take() {
            pump(entry.node.name.clone(), err, log, echo);
        }
        entry.child = Some(child);
        entry.started = Instant::now();
        entry.exit = None;
        Ok(())
    }

    /// Starts every node, validators first.
    pub fn start_all(&mut self) -> Result<(), DaemonError> {
        for index in 0..self.running.len() {
            self.start(index)?;
        }
        Ok(())
    }

    /// Node `index`'s process id while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.running[index].child.as_ref().map(Child::id)
    }

    /// Looks at every child; a child that exited is recorded, and restarted when `restart` and
    /// it ran at least a second (a node that cannot start is not restarted in a loop).
    pub fn poll(&mut self, restart: bool) -> Result<Vec<String>, DaemonError> {
        let mut events = Vec::new();
        for index in 0..self.running.len() {
            let entry = &mut self.running[index];
            let Some(child) = entry.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                let ran = entry.started.elapsed();
                entry.child = None;
                entry.exit = Some(status.to_string());
                events.push(format!("{} exited ({status})", entry.node.name));
                if restart && ran >= Duration::from_secs(1) {
                    entry.restarts += 1;
                    events.push(format!("{} restarting", entry.node.name));
                    self.start(index)?;
                }
            }
        }
        Ok(events)
    }

    /// Every node's row, asking each running node's API.
    pub fn status(&self) -> Vec<NodeStatus> {
        self.running
            .iter()
            .map(|entry| {
                let answer = entry.child.as_ref().and_then(|_| {
                    crate::client::Client::new(&entry.node.http.to_string())
                        .get_json("/status")
                        .ok()
                });
                NodeStatus {
                    name: entry.node.name.clone(),
                    role: entry.node.role,
                    pid: entry.child.as_ref().map(Child::id),
                    restarts: entry.restarts,
                    height: answer.as_ref().and_then(|a| a["height"].as_u64()),
                    state_root: answer
                        .as_ref()
                        .and_then(|a| a["state_root"].as_str().map(str::to_owned)),
                    exit: entry.exit.clone(),
                }
            })
            .collect()
    }

    /// Stops every child: SIGTERM, then SIGKILL for those still running after `grace`.
    pub fn stop_all(&mut self, grace: Duration) {
        for entry in &mut self.running {
            if let Some(child) = &entry.child {
                signal(child.id(), Signal::Terminate);
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            let mut alive = 0;
            for entry in &mut self.running {
                if let Some(child) = entry.child.as_mut() {
                    match child.try_wait() {
                        Ok(Some(status)) => {
                            entry.exit = Some(status.to_string());
                            entry.child = None;
                        }
                        _ => alive += 1,
                    }
                }
            }
            if alive == 0 {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for entry in &mut self.running {
            if let Some(mut child) = entry.child.take() {
                let _ = child.kill();
                let _ = child.wait();
                entry.exit = Some("killed after the grace period".into());
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(5));
    }
}

/// Signals a process can be sent.
#[derive(Clone, Copy, Debug)]
pub enum Signal {
    /// SIGTERM: stop gracefully.
    Terminate,
    /// SIGKILL: die now (a crash).
    Kill,
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: Signal) -> bool {
    #[cfg(unix)]
    {
        let number = match signal {
            Signal::Terminate => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: kill(2) has no memory effects; a stale pid at worst signals nothing.
        unsafe { libc::kill(pid, number) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, signal);
        false
    }
}

/// Renders the status table.
pub fn table(rows: &[NodeStatus]) -> String {
    let mut out = format!(
        "{:<14} {:<10} {:>8} {:>8} {:>8}  {:<18} {}\n",
        "node", "role", "pid", "restarts", "height", "state root", "exit"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<14} {:<10} {:>8} {:>8} {:>8}  {:<18} {}\n",
            row.name,
            format!("{:?}", row.role).to_lowercase(),
            row.pid.map_or("-".into(), |p| p.to_string()),
            row.restarts,
            row.height.map_or("-".into(), |h| h.to_string()),
            row.state_root
                .as_deref()
                .map_or("-".into(), |r| format!("{}…", &r[..r.len().min(16)])),
            row.exit.as_deref().unwrap_or(""),
        ));
    }
    out
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM set the returned flag instead of ending the process, so that a
/// supervisor stops its children first.
pub fn install_stop_handler() -> &'static std::sync::atomic::AtomicBool {
    #[cfg(unix)]
    {
        let handler = on_stop_signal as extern "C" fn(libc::c_int);
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, handler as libc::sighandler_t);
            libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
        }
    }
    &STOP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_devnet_is_written_once_with_a_shared_chain() {
        let dir = tempfile::tempdir().unwrap();
        let base = free_base_port(8, std::process::id()).expect("free ports");
        let config = DevnetConfig {
            validators: 2,
            standby: 1,
            trainers: 1,
            dir: dir.path().join("net"),
            base_port: base,
            datasets: vec!["digits".into()],
            ..DevnetConfig::default()
        };
        let manifest = write(&config).unwrap();
        assert_eq!(manifest.nodes.len(), 4);
        // The standby runs as a validator but holds no stake at genesis: it is an account.
        let standby = &manifest.nodes[2];
        assert_eq!(standby.name, "standby-0");
        assert_eq!(standby.role, NodeRole::Validator);
        assert_eq!(Manifest::read(&config.dir).unwrap(), manifest);
        let chains: Vec<ChainFile> = manifest
            .nodes
            .iter()
            .map(|n| ChainFile::read(&Home::new(&n.home).genesis()).unwrap())
            .collect();
        assert!(chains.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(chains[0].bootstrappers().unwrap().len(), 2);
        assert_eq!(chains[0].validators.len(), 2);
        assert!(chains[0]
            .accounts
            .iter()
            .any(|m| m.name == "standby-0" && m.stake == 0));
        assert_eq!(chains[0].params.epoch_length, DEFAULT_EPOCH_LENGTH);
        assert!(chains[0].params.unbond_delay >= DEFAULT_EPOCH_LENGTH);
        let no_epochs = DevnetConfig {
            epoch_length: 0,
            dir: dir.path().join("other"),
            ..config.clone()
        };
        assert!(matches!(write(&no_epochs), Err(DaemonError::Settings(_))));
        for node in &manifest.nodes {
            let home = Home::new(&node.home);
            let (key, chain) = home.load().unwrap();
            assert!(chain.member(&key.public_key()).is_some());
            assert_eq!(home.settings().unwrap().role, node.role);
        }
        assert!(matches!(write(&config), Err(DaemonError::Exists(_))));
    }

    #[test]
    fn a_free_base_port_has_its_range_free_and_skips_a_held_range() {
        let base = free_base_port(6, 7).expect("free ports");
        assert!(base >= 20_000);
        let held: Vec<std::net::TcpListener> = (0..6)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).unwrap())
            .collect();
        let other = free_base_port(6, 7).expect("free ports");
        assert!(
            other >= base + 6 || other + 6 <= base,
            "{other} overlaps {base}"
        );
        drop(held);
    }

    #[test]
    fn a_port_in_use_stops_the_devnet_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let config = DevnetConfig {
            validators: 1,
            trainers: 0,
            dir: dir.path().join("net"),
            base_port: port,
            ..DevnetConfig::default()
        };
        let error = write(&config).unwrap_err();
        assert!(matches!(error, DaemonError::Port { .. }), "{error}");
        assert!(!config.dir.exists());
    }
}
