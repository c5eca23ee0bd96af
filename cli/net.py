"""start, status, peers, connect, follow, unfollow: the running node and its network."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from .i18n import _
from .context import Context, emit, json_option, pass_ctx

CALL_TIMEOUT = 60.0  # seconds for one control call (a connect may take a dial timeout)


def daemon_info(home_path: Path) -> dict[str, Any] | None:
    from node.control import read_control_file
    return read_control_file(home_path)


_http: Any = None


def _client() -> Any:
    """One HTTP client per process: commands that poll the node (get, transfers --watch)
    would otherwise build a client and a TLS context per call (~28 ms of CPU each)."""
    global _http
    if _http is None:
        import atexit

        import httpx
        _http = httpx.Client(timeout=CALL_TIMEOUT)
        atexit.register(_http.close)
    return _http


def call(home_path: Path, name: str, **args: Any) -> Any:
    """Call the running node's control API; NodeError if it is not running or refuses."""
    import httpx

    from node.errors import NodeError
    info = daemon_info(home_path)
    if info is None:
        raise NodeError("the node is not running (start it with 'schoolmesh start')")
    headers = {"authorization": f"Bearer {info['token']}"}
    client = _client()
    try:
        if args:
            r = client.post(f"{info['url']}/v1/{name}", json=args, headers=headers)
        else:
            r = client.get(f"{info['url']}/v1/{name}", headers=headers)
    except httpx.HTTPError as exc:
        raise NodeError(f"cannot reach the running node: {exc}") from None
    body = r.json()
    if r.status_code != 200:
        raise NodeError(body.get("error", f"control API answered {r.status_code}"))
    return body


def _setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # py-libp2p logs many ERROR/WARNING lines in normal operation (docs/py-libp2p.md)
    logging.getLogger("libp2p").setLevel(logging.DEBUG if debug else logging.CRITICAL)
    for noisy in ("hypercorn", "httpx", "zeroconf", "multiaddr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.command()
@click.option("--listen", "listen", multiple=True, metavar="MULTIADDR",
              help="Where to accept peers (repeatable; default /ip4/0.0.0.0/tcp/4004).")
@click.option("--bootstrap", multiple=True, metavar="MULTIADDR",
              help="A peer to keep connected to, e.g. the demonstration school (repeatable; "
                   "…/p2p/<school id>).")
@click.option("--mdns/--no-mdns", default=True, show_default=True,
              help="Find other schoolmesh nodes on the school LAN.")
@click.option("--control", default="127.0.0.1:0", show_default=True, metavar="HOST:PORT",
              help="Where the local control API listens (port 0: any free port).")
@click.option("--web", default="0.0.0.0:8080", show_default=True, metavar="HOST:PORT",
              help="Serve the teacher web library there (every address of this computer by "
                   "default, so the school LAN reaches it).")
@click.option("--no-web", is_flag=True, help="Do not serve the teacher web library.")
@pass_ctx
def start(obj: Context, listen: tuple[str, ...], bootstrap: tuple[str, ...], mdns: bool,
          control: str, web: str, no_web: bool) -> None:
    """Run the node in the foreground until Ctrl-C / SIGTERM.

    Prints where teachers open the web library. A bad option, or a port in use (another
    node on this computer?), stops it at once with one error line naming the option."""
    import trio

    from node.daemon import Options, run
    from node.errors import NodeError
    if daemon_info(obj.home_path) is not None:
        raise NodeError(f"a node is already running for {obj.home_path}")
    _setup_logging(obj.debug)
    options = Options(listen=list(listen) or Options().listen, bootstrap=list(bootstrap),
                      mdns=mdns, control=control, web=None if no_web else web)
    options.check()
    if no_web:
        from node.startup import parse_hostport
        parse_hostport("--web", web)  # a bad value is refused even when it is not used
    home = obj.home_with_key()
    trio.run(run, home, options, _say_where)


def _say_where(node: Any) -> None:
    """Once the node serves: where teachers open the library (stdout; the log is stderr)."""
    urls = node.teacher_urls()
    if urls:
        click.echo(_("Teachers open the web library at: {urls}").format(urls="  ".join(urls)))
    else:
        click.echo(_("The web library is off (--no-web)."))


@click.command()
@json_option
@pass_ctx
def status(obj: Context, as_json: bool) -> None:
    """Show the running node: school id, where teachers open the web library (with a QR
    code for phones), disk space, listen addresses, peers."""
    d = call(obj.home_path, "status")
    emit(d, as_json, _print_status)


def _print_status(d: dict) -> None:
    from node.bundle import human_size as format_size
    click.echo(
        f"{d['name']} ({d['role']}) {d['school_id']}\n" + "".join(
            _("web library: {url}").format(url=u) + "\n"
            for u in d.get("web_urls") or [_("off")]) +
        _("connected schools: {peers}, schools followed: {following}, own catalog entries: "
          "{seq}").format(peers=d['peers'], following=d['following'], seq=d['feed_seq'])
        + ("" if d["own_head"] == "known" else
           _(" (restored: learning its latest entry, publishing waits)")))
    click.echo(_("disk: {free} free of {total}, reserve {reserve}").format(
        free=format_size(d['disk']['free']), total=format_size(d['disk']['total']),
        reserve=format_size(d['disk']['reserve'])))
    if d["disk_warning"]:
        click.echo(_("WARNING: {warning}").format(warning=d['disk_warning']))
    click.echo("\n".join(_("listening on (address) {addr}").format(addr=a) for a in d["listen"]))
    if urls := d.get("web_urls"):
        from node.web import qr
        tty = click.get_text_stream("stdout").isatty()
        click.echo("\n" + _("Teachers scan this with a phone to open {url}").format(url=urls[0])
                   + "\n" + _("(a page to print for the staff room: {url})").format(
                       url=urls[0] + "where") + "\n"
                   + qr.terminal(urls[0], tty=tty), nl=False)


@click.command()
@json_option
@pass_ctx
def peers(obj: Context, as_json: bool) -> None:
    """List connected peers."""
    rows = call(obj.home_path, "peers")
    emit(rows, as_json, lambda rows: click.echo(
        "\n".join(f"{r['peer_id']}  {' '.join(r['addrs'])}" for r in rows) or "no peers"))


@click.command()
@click.argument("multiaddr")
@json_option
@pass_ctx
def connect(obj: Context, multiaddr: str, as_json: bool) -> None:
    """Connect to a peer now (MULTIADDR ends with /p2p/<school id>)."""
    d = call(obj.home_path, "connect", addr=multiaddr)
    emit(d, as_json, lambda d: click.echo(_("connected to {school}").format(
        school=d['peer_id'])))


@click.command()
@click.argument("school_id")
@json_option
@pass_ctx
def follow(obj: Context, school_id: str, as_json: bool) -> None:
    """Replicate a school's catalog (its feed) from any peer that has it."""
    from node import daemon
    d = daemon.follow(obj.home(), school_id)
    if daemon_info(obj.home_path) is not None:
        call(obj.home_path, "sync", now=True)
    emit(d, as_json, lambda d: click.echo(_("following {school}").format(
        school=d['following'])))


@click.command()
@click.argument("school_id")
@json_option
@pass_ctx
def unfollow(obj: Context, school_id: str, as_json: bool) -> None:
    """Stop replicating a school's feed (what was already received is kept)."""
    from node import daemon
    d = daemon.unfollow(obj.home(), school_id)
    emit(d, as_json, lambda d: click.echo(_("no longer following {school}").format(
        school=d['unfollowed'])))


def register(group: click.Group) -> None:
    for cmd in (start, status, peers, connect, follow, unfollow):
        group.add_command(cmd)
