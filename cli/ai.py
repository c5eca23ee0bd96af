"""ai set/show/clear/use: the AI assistant's engine (an OpenAI-compatible chat endpoint) and
the model file it runs, which can be a resource of type ai-model (issue 18).  The API key
stays in the operator's file; only its path is stored and the key is never printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .context import Context, emit, json_option, pass_ctx
from .i18n import _


@click.group()
def ai() -> None:
    """The AI assistant teachers use on resources in the web library (drafts, never published
    without the teacher)."""


def _human(d: dict[str, Any]) -> None:
    if not d.get("endpoint"):
        click.echo(_("AI assistant: not set (schoolmesh ai set --endpoint URL --model NAME)"))
    else:
        click.echo(_("endpoint: {url}").format(url=d['endpoint']))
        click.echo(_("model: {model} (answers up to {n} tokens)").format(model=d['model'],
                                                                         n=d['max_tokens']))
        click.echo(_("api key file: {file}").format(file=d['api_key_file'] or _("none")))
    if d.get("model_file"):
        click.echo(_("local model file: {file} (resource {id})").format(
            file=d['model_file'], id=d['model_resource']))
        click.echo(_("start the engine: {command}").format(
            command=f"python -m llama_cpp.server --model {d['model_file']} --host 127.0.0.1 "
                    "--port 8080   (" + _("or: {command}").format(
                        command="llama-server -m FILE") + ")"))


@ai.command("set")
@click.option("--endpoint", required=True, metavar="URL",
              help="The engine's base URL, e.g. http://127.0.0.1:8080 (a llama.cpp server); "
                   "requests go to URL/v1/chat/completions.")
@click.option("--model", required=True, metavar="NAME", help="The model name to ask for.")
@click.option("--api-key-file", type=click.Path(path_type=Path, dir_okay=False),
              help="A file holding the API key (mode 600: readable by its owner only).")
@click.option("--max-tokens", type=int, default=1024, show_default=True,
              help="Longest answer asked of the engine, in tokens (16-8192).")
@json_option
@pass_ctx
def set_(obj: Context, endpoint: str, model: str, api_key_file: Path | None, max_tokens: int,
         as_json: bool) -> None:
    """Point the node at an OpenAI-compatible chat endpoint."""
    from node import ai as nai
    emit(nai.set_config(obj.home().conn, endpoint, model, api_key_file, max_tokens), as_json,
         _human)


@ai.command()
@json_option
@pass_ctx
def show(obj: Context, as_json: bool) -> None:
    """Show the endpoint, model and key file (never the key)."""
    from node import ai as nai
    emit(nai.show_config(obj.home().conn), as_json, _human)


@ai.command()
@pass_ctx
def clear(obj: Context) -> None:
    """Forget the AI configuration (teachers no longer see the assistant)."""
    from node import ai as nai
    nai.clear_config(obj.home().conn)
    click.echo(_("AI assistant cleared"))


@ai.command()
@click.argument("resource_id")
@json_option
@pass_ctx
def use(obj: Context, resource_id: str, as_json: bool) -> None:
    """Use the model file (GGUF) of an ai-model resource held and verified on this node."""
    from node import ai as nai
    d = nai.use_model(obj.home(), resource_id)

    def human(d: dict[str, Any]) -> None:
        click.echo(_("model file {file} ({size} bytes, sha256 {sha256})").format(
            file=d['model_file'], size=d['size'], sha256=d['sha256']))
        click.echo(_("start the engine: {command}").format(
            command=f"python -m llama_cpp.server --model {d['model_file']} --host 127.0.0.1 "
                    "--port 8080"))
    emit(d, as_json, human)


def register(main: click.Group) -> None:
    main.add_command(ai)
