"""`manage.py generate_events --users N --months M [--seed S]`: a simulated history in the store."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from analytics.simulation import GenerationSpec, generate


class Command(BaseCommand):
    help = (
        "Write a realistic, deterministic book2video event history (signups, sessions, videos, "
        "subscriptions, satisfaction, tickets, churn with a documented signal: see "
        "analytics/simulation.py) and the users dimension into the analytics store."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True)
        parser.add_argument("--months", type=int, default=12)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--end", type=dt.date.fromisoformat, default=None, help="last day (default: now)"
        )
        parser.add_argument("--id-prefix", default=None, help='user id prefix (default "u<seed>-")')

    def handle(self, *args, users, months, seed, end, id_prefix, **options):
        end_at = dt.datetime.combine(end, dt.time(23, 59, 59), dt.UTC) if end else None
        try:
            spec = GenerationSpec(
                users=users, months=months, seed=seed, end=end_at, id_prefix=id_prefix
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verbose = options["verbosity"] > 1
        result = generate(spec, progress=self.stdout.write if verbose else None)
        self.stdout.write(
            f"generated {result.events:,} events for {result.users:,} users over {months} months "
            f"in {result.seconds:.1f} s ({result.events_per_second:,.0f} events/s)"
        )
        for event, count in sorted(result.per_event.items()):
            self.stdout.write(f"  {event}: {count:,}")
