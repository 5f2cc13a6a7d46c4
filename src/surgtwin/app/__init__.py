"""The desktop app: the only package that imports PyQt6 and pyvistaqt.

A thin layer of windows, views, panels and actions over the evented
:class:`~surgtwin.planning.plan.Plan` and its
:class:`~surgtwin.planning.commands.CommandStack`; all logic lives in the core.
"""
