"""`manage.py events_writer`: the long-running consumer that moves buffered events into the store."""

import signal
import threading

from django.core.management.base import BaseCommand

from analytics.events.writer import EventWriter


class Command(BaseCommand):
    help = "Flush captured events from the Redis buffer into the analytics store until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--consumer", help="consumer name in the group (default host-pid)")

    def handle(self, *args, consumer=None, **options):
        stop = threading.Event()
        writer = EventWriter(consumer=consumer)
        # The embedded ClickHouse installs its own signal handlers when it first opens, so
        # open it once before installing ours (SIGTERM must finish the batch, then stop).
        writer.db.ping()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"event writer {writer.consumer} started")
        writer.run(stop)
        self.stdout.write("event writer stopped")
