"""``python -m domainllm``: the CLI."""

from domainllm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
