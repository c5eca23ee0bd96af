"""community create|invite|join|members|remove|link|list|quota, pins, subscribe,
subscriptions, unsubscribe: paired-assistance communities (specs/communities.md)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import click

from .i18n import _
from .context import Context, emit, json_option, pass_ctx
from .net import call, daemon_info


_UNITS = {"m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def parse_duration(text: str) -> int:
    """'30m', '12h', '7d', '2w' -> milliseconds."""
    m = re.fullmatch(r"\s*(\d{1,6})\s*(m|min|h|d|w)\s*", text.lower())
    if not m or int(m.group(1)) == 0:
        raise click.BadParameter(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone().strftime(
        "%Y-%m-%d %H:%M")


def _size(n: int | None) -> str:
    from protocol.units import format_size
    return "?" if n is None else format_size(n)


community_option = click.option("--community", "community_id", metavar="ID",
                                help="Which community (needed only when this school is in "
                                     "several).")


@click.group()
def community() -> None:
    """Paired-assistance communities: a demonstration school and its village schools."""


@community.command()
@click.argument("name")
@click.option("--description", help="What the community is for (shown to members).")
@json_option
@pass_ctx
def create(obj: Context, name: str, description: str | None, as_json: bool) -> None:
    """Found a community with this school as its demonstration school (a signed charter)."""
    from node import community as nc
    d = nc.create(obj.home_with_key(), name, description)
    emit(d, as_json, lambda d: click.echo(
        _("community {name!r} created: {id}").format(name=d['name'], id=d['community_id'])
        + "\n" + _("invite schools with: schoolmesh community invite")))


@community.command()
@community_option
@click.option("--role", type=click.Choice(["member", "demonstration"]), default="member",
              show_default=True, help="Role the invited school gets.")
@click.option("--expires", "expires", default="7d", show_default=True, metavar="DURATION",
              help="How long the code can be redeemed (e.g. 12h, 7d, 2w).")
@click.option("--seed", "seeds", multiple=True, metavar="MULTIADDR",
              help="Address where invited schools reach this node (repeatable, at most 4; "
                   "default: the running node's listen addresses).")
@json_option
@pass_ctx
def invite(obj: Context, community_id: str | None, role: str, expires: str,
           seeds: tuple[str, ...], as_json: bool) -> None:
    """Make a one-time invite code for a school (valid once, until it expires)."""
    from node import community as nc
    ttl = parse_duration(expires)
    home = obj.home_with_key()
    addrs = list(seeds)
    if not addrs and daemon_info(obj.home_path) is not None:
        addrs = _reachable(call(obj.home_path, "status")["listen"])
    d = nc.invite(home, community_id, role=role, ttl_ms=ttl, seeds=addrs)
    emit(d, as_json, lambda d: click.echo(
        f"{d['code']}\n\n" + _("one-time invite code for a {role} school, valid until "
                                "{expires}; the school runs: schoolmesh community join CODE")
        .format(role=_(d['role']), expires=_when(d['expires']))))


def _reachable(listen: list[str]) -> list[str]:
    from node.startup import reachable_addrs
    return reachable_addrs(listen)


@community.command()
@click.argument("code")
@json_option
@pass_ctx
def join(obj: Context, code: str, as_json: bool) -> None:
    """Join a community with an invite code (the node must be running)."""
    d = call(obj.home_path, "community_join", code=code)
    emit(d, as_json, lambda d: click.echo(
        _("joined {name!r} ({id}) as a {role} school; the catalog of its members is "
          "replicating now").format(name=d['name'], id=d['community_id'], role=_(d['role']))))


@community.command()
@community_option
@json_option
@pass_ctx
def members(obj: Context, community_id: str | None, as_json: bool) -> None:
    """List the community's schools with role and status."""
    from node import community as nc
    d = nc.members(obj.home(), community_id)

    def human(d: dict[str, Any]) -> None:
        click.echo(f"{d['name'] or _('(charter not received yet)')}  {d['community_id']}")
        for m in d["members"]:
            status = _(m["status"])
            if m["status"] == "revoked":
                status += f" {_when(m['revoked_at'])}"
            elif m["expires"]:
                status += " " + _("until {when}").format(when=_when(m['expires']))
            you = "  " + _("(this school)") if m["you"] else ""
            click.echo(f"  {m['school_id']}  {_(m['role']):<13} {status:<24} "
                       f"{m['name'] or ''}{you}")
            if m.get("suspect"):
                click.echo("      " + _("not kept here: {why}").format(why=m['suspect']))
        for link in d["links"]:
            click.echo("  " + _("linked community {id}").format(id=link))
        if d["rejected"]:
            click.echo("  " + _("{n} decision(s) rejected (--json shows why)").format(
                n=len(d['rejected'])))
    emit(d, as_json, human)


@community.command(name="list")
@json_option
@pass_ctx
def list_(obj: Context, as_json: bool) -> None:
    """List the communities this school belongs to or links."""
    from node import community as nc
    rows = nc.list_communities(obj.home())
    emit(rows, as_json, lambda rows: click.echo("\n".join(
        f"{r['community_id']}  {r['name'] or '?'}  {_(r['relation'])}"
        + (" " + _("as {role} ({status})").format(role=_(r['role']), status=_(r['status']))
           if r['role'] else "")
        + ", " + _("{n} active schools").format(n=r['members']) for r in rows)
        or _("no communities")))


@community.command()
@click.argument("school_id")
@community_option
@click.option("--reason", help="Why (kept in the signed revocation).")
@json_option
@pass_ctx
def remove(obj: Context, school_id: str, community_id: str | None, reason: str | None,
           as_json: bool) -> None:
    """Remove a school: a signed revocation that replicates like any entry."""
    from node import community as nc
    d = nc.remove(obj.home_with_key(), school_id, community_id, reason)
    emit(d, as_json, lambda d: click.echo(
        _("removed {school} from {id}; its later entries are no longer replicated or kept for "
          "the community").format(school=d['removed'], id=d['community_id'])))


@community.command()
@click.argument("code")
@community_option
@json_option
@pass_ctx
def link(obj: Context, code: str, community_id: str | None, as_json: bool) -> None:
    """Federate with another community: replicate its catalog (CODE: any of its invite
    codes, which names it and its seeds; the code stays unused). Needs the running node."""
    d = call(obj.home_path, "community_link", code=code, community_id=community_id)
    emit(d, as_json, lambda d: click.echo(
        _("linked {id} with {name!r} ({linked}); its catalog is replicating now").format(
            id=d['community_id'], name=d['name'], linked=d['linked'])))


@community.command()
@click.argument("size", required=False)
@json_option
@pass_ctx
def quota(obj: Context, size: str | None, as_json: bool) -> None:
    """Show or set how much a demonstration school keeps for its communities (e.g. 200GiB);
    newest resources first when there is more."""
    from node import community as nc
    from protocol.units import parse_size
    home = obj.home()
    d = nc.set_seed_quota(home, parse_size(size, what="quota")) if size else {"seed_quota": nc.seed_quota(home)}
    emit(d, as_json, lambda d: click.echo(_("space kept for the communities: {size}").format(
        size=_size(d['seed_quota']))))


@click.command()
@json_option
@pass_ctx
def pins(obj: Context, as_json: bool) -> None:
    """What this node keeps, and why (own, community, subscription, bundle, user)."""
    from node import community as nc
    from node import gc
    from node.bundle import human_size
    d = nc.pins(obj.home())
    d["costs"] = gc.costs(obj.home())

    def human(d: dict[str, Any]) -> None:
        for p in d["pins"]:
            what = f"{p['title']} ({p['resource_id']})" if p["title"] else p["cid"]
            click.echo(f"{p['reason']:<13} {_size(p['size']):>10}  {what}  [{p['ref']}]")
        for reason, t in sorted(d["totals"].items()):
            click.echo(_("total {reason}: {n} pins, {size}").format(
                reason=reason, n=t['pins'], size=_size(t['bytes'])))
        if not d["pins"]:
            click.echo(_("nothing pinned"))
        c = d["costs"]
        for reason, k in c["reasons"].items():
            click.echo(_("blocks kept for {reason}: {size} ({alone} for it alone)").format(
                reason=reason, size=human_size(k['bytes']), alone=human_size(k['only_bytes'])))
        click.echo(_("cache (user, subscription): {used} of {quota}").format(
            used=human_size(c['cache']['used']), quota=human_size(c['cache']['quota'])))
        click.echo(_("'schoolmesh gc' would free {size} ({n} blocks)").format(
            size=human_size(c['gc_would_free']['bytes']), n=c['gc_would_free']['blocks']))
    emit(d, as_json, human)


@click.command()
@click.option("--subject", help="Subject to fetch automatically (as in resources' 'about').")
@click.option("--level", help="Education level to fetch automatically (e.g. primary-grade-3).")
@json_option
@pass_ctx
def subscribe(obj: Context, subject: str | None, level: str | None, as_json: bool) -> None:
    """Fetch matching resources of other schools automatically as they appear."""
    from node import community as nc
    d = nc.subscribe(obj.home(), subject, level)
    emit(d, as_json, lambda d: click.echo(
        _("subscription {id}: resources about {subject} for {level} are fetched "
          "automatically").format(id=d['id'], subject=d['subject'] or _('anything'),
                                  level=d['level'] or _('any level'))))


@click.command()
@json_option
@pass_ctx
def subscriptions(obj: Context, as_json: bool) -> None:
    """List the auto-fetch subscriptions."""
    from node import community as nc
    rows = nc.subscriptions(obj.home())
    emit(rows, as_json, lambda rows: click.echo("\n".join(
        f"{r['id']:>3}  " + _("subject {subject}  level {level}").format(
            subject=r['subject'] or '*', level=r['level'] or '*')
        for r in rows) or _("no subscriptions")))


@click.command()
@click.argument("subscription_id", type=int)
@json_option
@pass_ctx
def unsubscribe(obj: Context, subscription_id: int, as_json: bool) -> None:
    """Remove an auto-fetch subscription (what was fetched stays)."""
    from node import community as nc
    d = nc.unsubscribe(obj.home(), subscription_id)
    emit(d, as_json, lambda d: click.echo(_("subscription {id} removed").format(
        id=d['unsubscribed'])))


def register(group: click.Group) -> None:
    group.add_command(community)
    for cmd in (pins, subscribe, subscriptions, unsubscribe):
        group.add_command(cmd)
