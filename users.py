"""People and their roles in LoanDesk, kept in the decision log's database (LOANDESK_DB_URL).

    python users.py add ann@bank.example --role officer            # repeat --role for several
    python users.py set-role ann@bank.example --role risk --role auditor
    python users.py remove ann@bank.example
    python users.py list

Roles: officer (Decide, Batch, Learn), risk (the Model page's controls: propose and approve
changes), auditor (Monitoring, the decision-log export, the change history), admin (people and
roles). Changes made here are recorded with your operating-system user.
"""

from __future__ import annotations

import argparse
import sys

from model.records import access
from model.records.access import ROLES, AccessDenied, IdentityError
from model.records.log import DecisionLog, DecisionLogError
from model.records.people import People


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_text in (("add", "give EMAIL these roles, on top of any it has"),
                            ("set-role", "give EMAIL exactly these roles")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("email")
        cmd.add_argument("--role", action="append", required=True, metavar="ROLE",
                         help=f"one of {', '.join(ROLES)}; repeat for several")
    remove = sub.add_parser("remove", help="take every role from EMAIL")
    remove.add_argument("email")
    sub.add_parser("list", help="everyone with a role")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    people = People(DecisionLog())
    me = access.shell()
    try:
        if args.command == "list":
            return show(people)
        if args.command == "remove":
            had = people.remove(args.email, by=me)
            print(f"Removed {access.clean_email(args.email)} ({', '.join(sorted(had))})." if had
                  else f"{access.clean_email(args.email)} had no role; nothing changed.")
            return 0
        roles = access.parse_roles(args.role)
        change = people.add if args.command == "add" else people.set_roles
        now = change(args.email, roles, by=me)
        print(f"{access.clean_email(args.email)}: {', '.join(sorted(now))}")
        return 0
    except (IdentityError, AccessDenied, ValueError, DecisionLogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def show(people: People) -> int:
    listed = people.list()
    if not listed:
        print("Nobody has a role yet: `python users.py add EMAIL --role admin` to start.")
        return 0
    width = max(len(p.email) for p in listed)
    for p in listed:
        print(f"{p.email:{width}}  {', '.join(sorted(p.roles)):28}  by {p.granted_by}, "
              f"{p.granted_at:%Y-%m-%d %H:%M} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
