"""D-Adaptation Adam's page shows the same figure as Prodigy's: d over training for both."""

from .prodigy import figure


def make() -> None:
    figure("dadaptadam")
