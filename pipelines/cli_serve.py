"""``colorize serve``: a local web page and HTTP API (needs the ``web`` extra)."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from colorize.pipelines import cli_options as options
from colorize.pipelines.cli_common import EXIT_INTERRUPTED, build_pipeline, console, fail, shown, sigterm_as_interrupt


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="Address to listen on; a loopback one (127.0.0.1, ::1, localhost) keeps it to this computer.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, metavar="PORT", help="Port to listen on (0: any free one).")
    ] = 8000,
    max_upload_mb: Annotated[
        float,
        typer.Option("--max-upload-mb", min=0.001, metavar="MB", help="Refuse uploads larger than this many MB."),
    ] = 50.0,
    max_pixels: options.MaxPixels = 100.0,
    threshold: options.Threshold = None,
    weights: options.Weights = [],
    classifier_weights: options.ClassifierWeights = None,
    device: options.InferenceDevice = "auto",
    threads: options.Threads = None,
    work_size: options.WorkSize = None,
    saturation: Annotated[
        float,
        typer.Option(
            "--saturation", min=0.0, max=4.0, metavar="FLOAT", help="The page's starting saturation (1 as shipped)."
        ),
    ] = 1.0,
    allow_origin: Annotated[
        list[str],
        typer.Option(
            "--allow-origin",
            metavar="ORIGIN",
            help="Also take photos from pages of this other site, e.g. http://localhost:3000 (repeatable); "
            "other sites' pages are refused.",
        ),
    ] = [],
) -> None:
    """Serve a page and HTTP API to colorize photos in the browser. Ctrl-C stops it.

    Needs the web extra: pip install 'colorize-experts\\[web]'.

    Examples:  colorize serve ·
    colorize serve --port 8765 ·
    colorize serve --host 0.0.0.0 (reachable from other computers)
    """
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        fail(f"colorize serve needs {error.name or 'FastAPI and uvicorn'}: pip install 'colorize-experts[web]'")
    with _stopped_by_interrupt():
        from colorize.core.modelfile import ModelFileError
        from colorize.pipelines.serve import (
            ServeError,
            create_app,
            listening_socket,
            loopback_host_names,
            normalised_origin,
            run_server,
            url_of,
        )

        try:
            origins = [normalised_origin(origin) for origin in allow_origin]
        except ValueError as error:
            fail(f"--allow-origin: {error}")
        # Bound before the models load: a port already taken is told at once, and a browser
        # opened meanwhile waits in the queue instead of being refused.
        try:
            sock = listening_socket(host, port)
        except ServeError as error:
            fail(str(error))
        try:
            # Saturation 1 in the pipeline: each request scales it (the page's slider).
            pipeline = build_pipeline(None, threshold, weights, classifier_weights, device, work_size, 1.0, threads)
            try:
                for name in pipeline.available:  # every expert is on the page's menu: load them all now
                    pipeline.expert(name)
            except (ModelFileError, KeyError, TypeError, ValueError) as error:
                fail(str(error))
            # From the address the socket got, not the text typed: 127.1 and 127.0.0.2 are loopback too.
            allowed_hosts = loopback_host_names(sock, host)
            application = create_app(
                pipeline,
                max_upload_bytes=int(max_upload_mb * 2**20),
                max_pixels=int(max_pixels * 1_000_000),
                default_saturation=saturation,
                allowed_hosts=allowed_hosts,
                allowed_origins=origins,
            )
            if allowed_hosts is None:
                console.print(
                    f"[yellow]warning[/]: listening on {shown(host)}: anyone who can reach this machine can use the "
                    "page (it has no password)",
                    highlight=False,
                )
            typer.echo(f"colorize serve: {url_of(sock)} (Ctrl-C to stop)")
            run_server(application, sock)
        finally:
            sock.close()


@contextlib.contextmanager
def _stopped_by_interrupt():
    """Ctrl-C and SIGTERM stop the server with one line and exit 130."""
    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt:
        console.print("[yellow]stopped[/]: colorize serve was interrupted", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
