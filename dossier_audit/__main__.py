"""``python -m dossier_audit`` runs the ``dossier`` command."""

from dossier_audit.cli import main

main()
