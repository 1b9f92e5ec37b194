"""Give an account the scientist role (the workbench's pages and APIs)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from review.access import grant_scientist


class Command(BaseCommand):
    help = "Add the account with this email to the 'scientist' group."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args, **options) -> None:
        try:
            added = grant_scientist(email=options["email"])
        except DomainError as exc:
            raise CommandError(exc.message)
        self.stdout.write(self.style.SUCCESS(
            f"{options['email']} is now a scientist" if added else f"{options['email']} was already a scientist"))
