"""`manage.py run`: prepare, then start web, worker and beat together; Ctrl-C stops them all."""

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from core.embedded import ensure_embedded_redis, stop_embedded_redis
from core.management.commands.seed_demo import demo_modules
from core.processes import process_commands, reset_metrics_dir


class Command(BaseCommand):
    help = "Start the whole platform (web, worker, beat; embedded Redis when REDIS_URL is unset)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--no-prepare", action="store_true", help="skip migrate and seed_demo")
        parser.add_argument(
            "--only", nargs="*", help="start only these processes (web, worker, beat)"
        )

    def handle(self, *args, host, port, no_prepare, only, **options):
        started = time.monotonic()
        socket = ensure_embedded_redis()
        if socket:
            self.stdout.write(f"embedded Redis on {socket}")
        if not no_prepare:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("migrate_store", verbosity=0)
        reset_metrics_dir()
        commands = process_commands(host=host, port=port)
        children: dict[str, subprocess.Popen] = {}
        for name, argv in commands.items():
            if only and name not in only:
                continue
            children[name] = subprocess.Popen(argv, start_new_session=True)

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            # The processes start while demo data is seeded: the seed is idempotent and the
            # pages show their empty states until it is done (seconds, on a first start).
            if not no_prepare and settings.DEMO_MODE:
                call_command("seed_demo")
                # Background work the demo needs (the first model training): queued now, done
                # by the worker once it starts.
                for module in demo_modules():
                    if hasattr(module, "queue_background_work"):
                        module.queue_background_work(stdout=self.stdout)
            self._banner(host, port, time.monotonic() - started)
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(
                            f"{name} exited with {child.returncode}; stopping the platform"
                        )
                        exit_code = child.returncode or 1
                        stopping = True
                        break
                time.sleep(0.3)
        finally:
            self.stdout.write("stopping web, worker and beat …")
            # SIGTERM to each main process only: Celery's warm shutdown lets running tasks
            # finish (a TERM to its pool processes would kill them mid-task); then whatever is
            # left of each process group, after 15 s at most, is killed.
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 15
            for child in children.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
            stop_embedded_redis()
        sys.exit(exit_code)

    def _banner(self, host: str, port: int, seconds: float) -> None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        lines = [
            f"book2video console: http://{shown}:{port}/  (ready in {seconds:.1f} s; Ctrl-C stops it)"
        ]
        if settings.DEMO_MODE:
            from core.demo import demo_key_lines

            lines += ["demo logins: admin / demo, engineer / demo, pm / demo", *demo_key_lines()]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
