"""``python -m routing_rl``: the same command line as ``routing-rl``."""

from routing_rl.cli import main

if __name__ == "__main__":
    main(prog_name="routing-rl")
