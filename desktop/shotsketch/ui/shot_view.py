"""The one way a panel becomes a view of the open shot's model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shotsketch.app.observable import Event, Subscriptions
from shotsketch.app.shot import OpenShot

T = TypeVar("T")


class ShotView:
    """Mixed into a panel: ``panel.model = shot`` first disconnects everything the panel observed of
    the previous model, then calls :meth:`bind`, which subscribes through :meth:`observe` and
    shows the new model. So a panel never shows one shot while reacting to another."""

    _model: OpenShot | None = None
    _subscriptions: Subscriptions | None = None

    @property
    def model(self) -> OpenShot | None:
        return self._model

    @model.setter
    def model(self, shot: OpenShot) -> None:
        self.unbind()
        self._model = shot
        self.bind(shot)

    def observe(self, event: Event[T], callback: Callable[[T], None]) -> None:
        if self._subscriptions is None:
            self._subscriptions = Subscriptions()
        self._subscriptions.add(event, callback)

    def unbind(self) -> None:
        """Observe no model any more."""
        if self._subscriptions is not None:
            self._subscriptions.clear()
        self._model = None

    def bind(self, shot: OpenShot) -> None:
        """Subscribe to ``shot``'s events (with :meth:`observe`) and show it."""
        raise NotImplementedError


__all__ = ["ShotView"]
