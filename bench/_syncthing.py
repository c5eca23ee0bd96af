"""Syncthing as a same-run baseline for schoolmesh's transfer benchmark (not a benchmark itself).

    from _syncthing import ensure_syncthing, syncthing_transfer
    r = syncthing_transfer(src_dir, workdir)      # -> SyncthingResult
    r.scan_s, r.transfer_s, r.total_s             # float(r) == r.transfer_s

    .venv/bin/python bench/_syncthing.py          # self-test: 256 MiB file + 2,000 small files

Two Syncthing instances, A and B, run as subprocesses with their own ``--home`` under
``workdir``.  Each binds only to 127.0.0.1: the GUI/REST API on a free port with a known API
key, the sync protocol on ``tcp://127.0.0.1:<free port>``.  Global and local discovery, relays,
NAT traversal (and with it STUN), usage reporting (urAccepted=-1), crash reporting, automatic
upgrades and the default folder are all off.  Each instance knows the other only by its device
ID and explicit address.  One folder is shared: sendonly on A (path = ``src``), receiveonly on B
(path = ``workdir/dst``).  The filesystem watcher is off and the periodic rescan is set to one
hour, so that the only scans are the ones the benchmark triggers.  Everything else keeps
Syncthing's defaults (fsync on, copy-range "standard", ignorePerms off, compression "metadata",
hashers/copiers/pullers automatic), except setLowPriority, which is turned off by default: with
it Syncthing renices itself to +9 and takes the lowest best-effort I/O priority, which on an idle
machine changes nothing but would handicap it against schoolmesh whenever anything else runs.

Timing windows (wall clock, ``time.perf_counter``, REST polled every 20 ms):

* Both instances start with the shared folder *paused*.  We wait until both REST APIs answer and
  A reports B connected.  Start-up and the TLS connection are outside every window.
* ``scan_s``: from un-pausing the folder on A (``PATCH /rest/config/folders/ID``, which starts
  the folder and its initial scan, i.e. reading and hashing every file) until A's
  ``/rest/db/status`` reports state ``idle`` with ``localFiles`` and the file bytes of ``src``.
  B's folder is still paused, so A sends B no index yet and nothing is transferred.  This is the
  counterpart of schoolmesh's publish (hashing), which the publish benchmarks measure.
* ``transfer_s``: from un-pausing the folder on B (A has fully scanned) until B's
  ``/rest/db/status`` is ``idle`` with ``globalFiles == localFiles == number of files in src``
  and ``needFiles == needBytes == 0``, and B's ``/rest/db/completion`` says 100 %.  This covers
  the index exchange, B's requests, A reading blocks, the transfer over loopback, B checking each
  block's hash, writing the temporary files, fsync and rename: the counterpart of fetching
  already-published content.
* ``total_s = scan_s + transfer_s``.

The windows do not overlap.  If both folders ran at once, A would send index batches while still
scanning and B would start pulling early, so "transfer after scan" could not be separated.
After the transfer window, outside it, every file of ``src`` is compared with its copy in
``dst`` by SHA-256 (and no file may be missing or extra); a mismatch raises.

Both processes are always stopped (``POST /rest/system/shutdown``, then SIGTERM, then SIGKILL,
each with a bounded wait), also on errors and on KeyboardInterrupt.  Syncthing's output goes to
``workdir/syncthing-a.log`` and ``workdir/syncthing-b.log``.

Syncthing needs its folder marker ``.stfolder`` at the root of each folder.  If ``src`` has
none, one is created for the run and removed afterwards.  ``src`` is otherwise only read.
Only the standard library is used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

MiB = 1024 * 1024
FOLDER_ID = "schoolmesh-bench"
POLL_S = 0.02                      # REST poll interval inside the timed windows
STARTUP_TIMEOUT_S = 60.0           # REST up + devices connected
STOP_TIMEOUT_S = 10.0              # per stop step (shutdown, SIGTERM)
# Names Syncthing never syncs (internal files, its own temporaries).
_INTERNAL = {".stfolder", ".stignore", ".stversions"}

__all__ = ["SyncthingResult", "ensure_syncthing", "syncthing_transfer", "syncthing_version"]


# ---------------------------------------------------------------------------------------------
# Installing


def ensure_syncthing() -> str:
    """Path of the syncthing binary, installing Debian's package with apt-get if it is missing.

    Runs ``apt-get install -y syncthing`` (and, if that fails, ``apt-get update`` and the install
    again).  Raises RuntimeError with the reason if syncthing cannot be found or installed.
    """
    found = shutil.which("syncthing")
    if found:
        return found
    if not shutil.which("apt-get"):
        raise RuntimeError("syncthing is not installed and apt-get is not available: "
                           "install syncthing (Debian package 'syncthing') and put it on PATH")
    if os.geteuid() != 0:
        raise RuntimeError("syncthing is not installed and this is not root: "
                           "run 'apt-get install -y syncthing' as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL)

    cp = apt("install", "-y", "syncthing")
    if cp.returncode != 0:
        up = apt("update")
        if up.returncode != 0:
            raise RuntimeError("'apt-get install -y syncthing' failed and 'apt-get update' "
                               f"failed too:\n{cp.stderr[-2000:]}\n{up.stderr[-2000:]}")
        cp = apt("install", "-y", "syncthing")
    found = shutil.which("syncthing")
    if cp.returncode != 0 or not found:
        raise RuntimeError(f"'apt-get install -y syncthing' failed ({cp.returncode}):\n"
                           f"{(cp.stderr or cp.stdout)[-2000:]}")
    return found


def syncthing_version(binary: str | None = None) -> str:
    """The first line of ``syncthing --version``, e.g. 'syncthing v1.19.2-ds1 "Fermium Flea" ...'."""
    cp = subprocess.run([binary or ensure_syncthing(), "--version"], capture_output=True,
                        text=True, stdin=subprocess.DEVNULL)
    return (cp.stdout or cp.stderr).strip().splitlines()[0] if (cp.stdout or cp.stderr) else "?"


# ---------------------------------------------------------------------------------------------
# Result


@dataclasses.dataclass(frozen=True)
class SyncthingResult:
    """Timings of one Syncthing run (seconds) and what was transferred.

    ``float(result)`` is ``transfer_s``.
    """
    scan_s: float          # A: un-pause folder -> idle with all of src scanned (read + hashed)
    transfer_s: float      # B: un-pause folder -> idle, everything in sync, 100 % complete
    total_s: float         # scan_s + transfer_s
    files: int
    bytes: int             # sum of the file sizes
    verified: bool         # sha256 of every file identical in src and dst (always True: else raise)
    startup_s: float       # both processes started -> REST up and connected (for information)
    version: str

    def __float__(self) -> float:
        return self.transfer_s

    def mib_s(self, seconds: float) -> float:
        return self.bytes / MiB / seconds if seconds > 0 else float("inf")


# ---------------------------------------------------------------------------------------------
# One instance


class _Instance:
    """One Syncthing process.  By default everything is on 127.0.0.1 of this machine.  For a
    run inside a network namespace (bench/links.py): ``host`` is the address the sync protocol
    listens on and the peer dials; ``wrap`` turns the command line into one that runs in the
    namespace (e.g. ``link.command(k, argv)``); ``connect(port)`` returns a socket connected to
    127.0.0.1:port *inside* that namespace, through which every REST call goes (the GUI/REST
    API stays on the namespace's own loopback); ``reconnect_s`` is reconnectionIntervalS
    (Syncthing's default is 60)."""

    def __init__(self, binary: str, name: str, workdir: Path, gui_port: int, listen_port: int,
                 low_priority: bool = False, *, host: str = "127.0.0.1", wrap=None,
                 connect=None, reconnect_s: int = 1):
        self.binary = binary
        self.low_priority = low_priority
        self.name = name
        self.home = workdir / f"st-{name}"
        self.log_path = workdir / f"syncthing-{name}.log"
        self.gui_port = gui_port
        self.listen_port = listen_port
        self.host = host
        self.wrap = wrap or (lambda argv: argv)
        self.connect = connect
        self.reconnect_s = reconnect_s
        self.api_key = secrets.token_urlsafe(24)
        self.base = f"http://127.0.0.1:{gui_port}"
        self.device_id = ""
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._shutdown_sent = False

    # -- setup ---------------------------------------------------------------------------------

    def generate(self) -> None:
        self.home.mkdir(parents=True)
        cp = subprocess.run([self.binary, "generate", "--home", str(self.home),
                             "--no-default-folder", "--skip-port-probing"],
                            capture_output=True, text=True, env=_env(), stdin=subprocess.DEVNULL)
        if cp.returncode != 0 or not (self.home / "config.xml").exists():
            raise RuntimeError(f"syncthing generate failed for {self.name} ({cp.returncode}):\n"
                               f"{cp.stdout}{cp.stderr}")
        cp = subprocess.run([self.binary, "serve", "--device-id", "--home", str(self.home)],
                            capture_output=True, text=True, env=_env(), stdin=subprocess.DEVNULL)
        self.device_id = cp.stdout.strip()
        if cp.returncode != 0 or len(self.device_id) != 63:
            raise RuntimeError(f"cannot read the device ID of {self.name}: {cp.stdout}{cp.stderr}")

    def write_config(self, peer: "_Instance", folder_path: Path, folder_type: str) -> None:
        path = self.home / "config.xml"
        tree = ET.parse(path)
        root = tree.getroot()

        gui = root.find("gui")
        gui.set("enabled", "true")
        gui.set("tls", "false")
        _set(gui, "address", f"127.0.0.1:{self.gui_port}")
        _set(gui, "apikey", self.api_key)

        opts = root.find("options")
        for el in opts.findall("listenAddress"):
            opts.remove(el)
        la = ET.SubElement(opts, "listenAddress")
        la.text = f"tcp://{self.host}:{self.listen_port}"
        for tag, value in {
            "globalAnnounceEnabled": "false",
            "localAnnounceEnabled": "false",
            "relaysEnabled": "false",
            "natEnabled": "false",             # also disables STUN
            "urAccepted": "-1",
            "urSeen": "999",
            "crashReportingEnabled": "false",
            "autoUpgradeIntervalH": "0",
            "startBrowser": "false",
            "announceLANAddresses": "false",
            "restartOnWakeup": "false",
            # 1 by default: first dial attempts may race the peer's start
            "reconnectionIntervalS": str(self.reconnect_s),
            # Default true: Syncthing renices itself (+9) and lowers its I/O priority.  Off, so
            # that it competes for the CPU on equal terms with schoolmesh (which runs at normal
            # priority) if anything else runs on the machine.
            "setLowPriority": "true" if self.low_priority else "false",
        }.items():
            _set(opts, tag, value)
        for el in opts.findall("unackedNotificationID"):
            opts.remove(el)

        defaults = root.find("defaults")
        dev_tmpl = defaults.find("device")
        folder_tmpl = defaults.find("folder")

        # The peer, with its explicit address; our own <device> stays as generated.
        for el in root.findall("device"):
            if el.get("id") == peer.device_id:
                root.remove(el)
        dev = _copy(dev_tmpl)
        dev.set("id", peer.device_id)
        dev.set("name", f"bench-{peer.name}")
        _set(dev, "address", f"tcp://{peer.host}:{peer.listen_port}")
        _insert_after(root, "device", dev)

        # The shared folder, paused until the benchmark starts its window.
        for el in root.findall("folder"):
            root.remove(el)
        folder = _copy(folder_tmpl)
        folder.set("id", FOLDER_ID)
        folder.set("label", FOLDER_ID)
        folder.set("path", str(folder_path))
        folder.set("type", folder_type)
        folder.set("rescanIntervalS", "3600")
        folder.set("fsWatcherEnabled", "false")
        for el in folder.findall("device"):
            folder.remove(el)
        for dev_id in (self.device_id, peer.device_id):
            d = ET.Element("device", {"id": dev_id, "introducedBy": ""})
            ET.SubElement(d, "encryptionPassword").text = ""
            folder.insert(1, d)
        _set(folder, "paused", "true")
        idx = list(root).index(root.find("device"))
        root.insert(idx, folder)

        tree.write(path, encoding="unicode")

    # -- process -------------------------------------------------------------------------------

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.wrap([self.binary, "serve", "--home", str(self.home), "--no-browser",
                       "--no-restart", "--no-upgrade", "--no-default-folder", "--logflags=7"]),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=_env(),
            preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"syncthing {self.name} exited with {self.proc.returncode}; "
                               f"log tail:\n{self.log_tail()}")

    def request_shutdown(self) -> None:
        if self.alive() and not self._shutdown_sent:
            self._shutdown_sent = True
            try:
                self.request("POST", "/rest/system/shutdown", timeout=3)
            except Exception:
                pass

    def stop(self) -> None:
        """Shutdown via REST (if not requested yet), then SIGTERM, then SIGKILL; each with a
        bounded wait."""
        try:
            if self.alive():
                self.request_shutdown()
                try:
                    self.proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    pass
            if self.alive():
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    pass
            if self.alive():
                children = _children(self.proc.pid)
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
                for pid in children:            # none expected (see _env), but never leave any
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # -- REST ----------------------------------------------------------------------------------

    def request(self, method: str, path: str, params: dict | None = None, body=None,
                timeout: float = 10.0):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        if self.connect is not None:
            return self._request_via_socket(method, url[len(self.base):], data, timeout)
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"X-API-Key": self.api_key})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def _request_via_socket(self, method: str, target: str, data: bytes | None,
                            timeout: float):
        """The same request over a socket from ``self.connect`` (one inside a namespace);
        errors are raised as urllib's (URLError / HTTPError), as the default path does."""
        sock = self.connect(self.gui_port)
        conn = http.client.HTTPConnection("127.0.0.1", self.gui_port, timeout=timeout)
        sock.settimeout(timeout)
        conn.sock = sock
        try:
            headers = {"X-API-Key": self.api_key, "Host": f"127.0.0.1:{self.gui_port}"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status >= 400:
                raise urllib.error.HTTPError(self.base + target, resp.status, resp.reason,
                                             resp.headers, None)
        except http.client.HTTPException as e:
            raise urllib.error.URLError(e) from e
        finally:
            conn.close()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def get(self, path: str, **params):
        return self.request("GET", path, params or None)

    def folder_status(self) -> dict:
        return self.get("/rest/db/status", folder=FOLDER_ID)

    def set_folder_paused(self, paused: bool) -> None:
        self.request("PATCH", f"/rest/config/folders/{FOLDER_ID}", body={"paused": paused})


# ---------------------------------------------------------------------------------------------
# The benchmark


def syncthing_transfer(src: Path, workdir: Path, timeout: float = 600, *,
                       low_priority: bool = False) -> SyncthingResult:
    """Copy the file tree ``src`` from Syncthing instance A to instance B (``workdir/dst``).

    Returns a SyncthingResult with ``scan_s`` (A reads and hashes ``src``), ``transfer_s`` (B
    fetches everything from the fully scanned A; ``float(result)`` gives this) and ``total_s``
    (their sum); see the module docstring for the exact windows.  The copy is verified outside
    the windows: SHA-256 of every file, and the same set of files; a mismatch raises
    RuntimeError.  ``timeout`` bounds each phase (start-up, scan, transfer).  ``workdir`` is
    created if needed and must not already contain ``st-a``, ``st-b`` or ``dst``; it is left in
    place (homes, logs, the copy) for the caller to delete.  Both Syncthing processes are
    stopped before this returns or raises.  ``low_priority=True`` keeps Syncthing's default
    setLowPriority (nice +9, lowest best-effort I/O priority); the default turns it off.
    """
    src = Path(src).resolve()
    workdir = Path(workdir).resolve()
    if not src.is_dir():
        raise ValueError(f"src is not a directory: {src}")
    workdir.mkdir(parents=True, exist_ok=True)
    dst = workdir / "dst"
    for p in (workdir / "st-a", workdir / "st-b", dst):
        if p.exists():
            raise ValueError(f"{p} already exists: use a fresh workdir")
    if dst == src or src in dst.parents:
        raise ValueError("workdir must not be inside src")

    binary = ensure_syncthing()
    version = syncthing_version(binary)

    # Outside the windows: the expected content (this also puts src in the page cache, so the
    # scan measures hashing, not reading the disk, as the other benchmarks do).
    expected = _hash_tree(src)
    if not expected:
        raise ValueError(f"src has no regular files: {src}")
    n_files = len(expected)
    n_bytes = sum(size for size, _ in expected.values())

    marker = src / ".stfolder"
    made_marker = not marker.exists()
    if made_marker:
        marker.mkdir()
    dst.mkdir()
    (dst / ".stfolder").mkdir()

    gui_a, gui_b, lis_a, lis_b = _free_ports(4)
    a = _Instance(binary, "a", workdir, gui_a, lis_a, low_priority)
    b = _Instance(binary, "b", workdir, gui_b, lis_b, low_priority)
    try:
        a.generate()
        b.generate()
        a.write_config(b, src, "sendonly")
        b.write_config(a, dst, "receiveonly")

        _settle()
        t_start = time.perf_counter()
        a.start()
        b.start()
        deadline = time.monotonic() + min(timeout, STARTUP_TIMEOUT_S)
        for inst in (a, b):
            _wait(lambda inst=inst: _rest_up(inst), deadline, "REST API of " + inst.name, a, b)
        _wait(lambda: _connected(a, b.device_id) and _connected(b, a.device_id), deadline,
              "A and B to connect", a, b)
        startup_s = time.perf_counter() - t_start

        # Scan window: A reads and hashes src.  B's folder is paused, so no index goes to B.
        _settle()
        t0 = time.perf_counter()
        a.set_folder_paused(False)
        _wait(lambda: _scanned(a, n_files, n_bytes), time.monotonic() + timeout,
              "A to scan src", a, b, poll=POLL_S)
        t1 = time.perf_counter()

        # Transfer window: B joins, gets A's index, pulls every block.
        _settle()
        t2 = time.perf_counter()
        b.set_folder_paused(False)
        _wait(lambda: _complete(b, n_files), time.monotonic() + timeout,
              "B to receive everything", a, b, poll=POLL_S)
        t3 = time.perf_counter()
    finally:
        for inst in (b, a):                 # both shut down in parallel, then wait for each
            inst.request_shutdown()
        for inst in (b, a):
            try:
                inst.stop()
            except Exception as e:          # keep stopping the other one
                print(f"warning: stopping syncthing {inst.name}: {e}", file=sys.stderr)
        if made_marker:
            try:
                marker.rmdir()
            except OSError:
                pass

    got = _hash_tree(dst)
    if got != expected:
        missing = sorted(set(expected) - set(got))[:5]
        extra = sorted(set(got) - set(expected))[:5]
        differ = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])[:5]
        raise RuntimeError(f"Syncthing copy differs from src: missing {missing}, extra {extra}, "
                           f"different {differ} (first 5 of each)")
    scan_s, transfer_s = t1 - t0, t3 - t2
    return SyncthingResult(scan_s=scan_s, transfer_s=transfer_s, total_s=scan_s + transfer_s,
                           files=n_files, bytes=n_bytes, verified=True, startup_s=startup_s,
                           version=version)


# ---------------------------------------------------------------------------------------------
# Conditions polled


def _rest_up(inst: _Instance) -> bool:
    try:
        return bool(inst.get("/rest/system/status").get("myID"))
    except (OSError, urllib.error.URLError, ValueError, AttributeError):
        return False


def _connected(inst: _Instance, peer_id: str) -> bool:
    conns = inst.get("/rest/system/connections").get("connections", {})
    return bool(conns.get(peer_id, {}).get("connected"))


def _scanned(a: _Instance, n_files: int, n_bytes: int) -> bool:
    st = a.folder_status()
    # localBytes also counts 128 bytes per directory (Syncthing's synthetic size)
    return (st.get("state") == "idle" and st.get("localFiles") == n_files
            and st.get("localBytes", 0) >= n_bytes and not st.get("error"))


def _complete(b: _Instance, n_files: int) -> bool:
    st = b.folder_status()
    if not (st.get("state") == "idle" and st.get("globalFiles") == n_files
            and st.get("localFiles") == n_files and st.get("needFiles") == 0
            and st.get("needBytes") == 0 and st.get("needDeletes", 0) == 0):
        return False
    comp = b.get("/rest/db/completion", folder=FOLDER_ID)
    return comp.get("completion") == 100 and comp.get("needBytes") == 0


def _wait(cond, deadline: float, what: str, a: _Instance, b: _Instance,
          poll: float = 0.1) -> None:
    last_err: Exception | None = None
    while True:
        a.check_alive()
        b.check_alive()
        try:
            if cond():
                return
        except (OSError, urllib.error.URLError, ValueError, AttributeError) as e:
            last_err = e
        if time.monotonic() > deadline:
            detail = []
            for inst in (a, b):
                try:
                    detail.append(f"{inst.name}: status {inst.folder_status()}")
                    detail.append(f"{inst.name}: errors "
                                  f"{inst.get('/rest/folder/errors', folder=FOLDER_ID)}")
                except Exception as e:
                    detail.append(f"{inst.name}: REST failed: {e}")
                detail.append(f"{inst.name} log tail:\n{inst.log_tail(15)}")
            raise TimeoutError(f"timed out waiting for {what} (last error: {last_err})\n"
                               + "\n".join(detail))
        time.sleep(poll)


# ---------------------------------------------------------------------------------------------
# Helpers


def _env() -> dict:
    # STMONITORED=yes: run Syncthing's inner process directly.  Otherwise 1.19 starts a monitor
    # process that runs the real one as its child even with --no-restart, and killing the
    # monitor (our fallback) could orphan the child.
    env = {**os.environ, "STNODEFAULTFOLDER": "1", "STNOUPGRADE": "1", "STNORESTART": "1",
           "STMONITORED": "yes"}
    env.pop("STTRACE", None)
    return env


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if this Python process dies without cleaning up
    (e.g. killed by SIGKILL or an unhandled SIGTERM), so no syncthing is left behind."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)      # PR_SET_PDEATHSIG
    except Exception:
        pass


def _children(pid: int) -> list[int]:
    """Direct children of pid (Linux /proc), [] if unknown."""
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _set(parent: ET.Element, tag: str, text: str) -> None:
    el = parent.find(tag)
    if el is None:
        el = ET.SubElement(parent, tag)
    el.text = text


def _copy(el: ET.Element) -> ET.Element:
    return ET.fromstring(ET.tostring(el))


def _insert_after(root: ET.Element, tag: str, new: ET.Element) -> None:
    children = list(root)
    last = max(i for i, c in enumerate(children) if c.tag == tag)
    root.insert(last + 1, new)


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _settle() -> None:
    os.sync()
    time.sleep(0.2)


def _hash_tree(root: Path) -> dict[str, tuple[int, str]]:
    """{relative path: (size, sha256 hex)} of every regular file under root, minus Syncthing's
    internal names (.stfolder, .stignore, .stversions) and its temporary files."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _INTERNAL]
        for name in filenames:
            if name in _INTERNAL or (name.startswith(".syncthing.") and name.endswith(".tmp")):
                continue
            p = Path(dirpath, name)
            if p.is_symlink() or not p.is_file():
                continue
            h = hashlib.sha256()
            size = 0
            with open(p, "rb") as f:
                while chunk := f.read(MiB):
                    h.update(chunk)
                    size += len(chunk)
            out[p.relative_to(root).as_posix()] = (size, h.hexdigest())
    return out


# ---------------------------------------------------------------------------------------------
# Self-test

SEED = 20240601          # as bench/publish_small.py


def _make_large(root: Path, size: int) -> None:
    root.mkdir()
    with open(root / "large.bin", "wb") as f:
        left = size
        while left:
            n = min(MiB, left)
            f.write(os.urandom(n))
            left -= n


def _make_small(root: Path, n_files: int = 2000, per_folder: int = 500) -> None:
    """The same tree as bench/publish_small.py: seeded sizes 4-64 KiB, 4 folders of 500."""
    import random
    rng = random.Random(SEED)
    for i in range(n_files):
        d = root / f"unit{i // per_folder:02d}"
        if i % per_folder == 0:
            d.mkdir(parents=True)
        (d / f"page{i % per_folder:04d}.bin").write_bytes(
            rng.randbytes(rng.randint(4 * 1024, 64 * 1024)))


def _main() -> None:
    import argparse
    import tempfile
    ap = argparse.ArgumentParser(description="Self-test: Syncthing baseline transfer figures.")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--large-mib", type=int, default=256)
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=1, help="runs per case (median shown)")
    args = ap.parse_args()

    import statistics
    binary = ensure_syncthing()
    print(f"== Syncthing baseline self-test: {syncthing_version(binary)} ({binary}), "
          f"{os.cpu_count()} CPUs", flush=True)
    base = os.environ.get("BENCH_TMPDIR") or str(Path(__file__).resolve().parents[2])
    tmp = Path(tempfile.mkdtemp(prefix="bench-tmp-syncthing-", dir=base))
    try:
        cases = []
        large = tmp / "src-large"
        _make_large(large, args.large_mib * MiB)
        cases.append((f"1 file of {args.large_mib} MiB", large))
        small = tmp / "src-small"
        _make_small(small, args.small_files, min(500, args.small_files))
        cases.append((f"{args.small_files:,} files of 4-64 KiB", small))
        for n, (label, src) in enumerate(cases):
            runs = []
            for i in range(args.repeats):
                work = tmp / f"work-{n}-{i}"
                runs.append(syncthing_transfer(src, work))
                if not args.keep:
                    shutil.rmtree(work, ignore_errors=True)
            r = runs[0]
            print(f"-- {label}: {r.files:,} files, {r.bytes / MiB:.1f} MiB; "
                  f"start-up {statistics.median(x.startup_s for x in runs):.2f} s"
                  + (f"; median of {len(runs)}" if len(runs) > 1 else ""))
            for name in ("scan_s", "transfer_s", "total_s"):
                ts = [getattr(x, name) for x in runs]
                t = statistics.median(ts)
                each = ("  (" + ", ".join(f"{x:.2f}" for x in ts) + ")") if len(ts) > 1 else ""
                print(f"   {name[:-2]:<8} {t:7.2f} s  {r.mib_s(t):7.1f} MiB/s{each}")
            ok = all(x.verified for x in runs)
            print(f"   sha256 of every file identical: {'yes' if ok else 'no'}", flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    _main()
