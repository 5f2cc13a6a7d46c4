"""The Segment panel's refinement of the selected label: islands, holes, smoothing, margins
and splitting into islands, each computed on a worker and pushed as one undo step."""

from __future__ import annotations

import numpy as np

from surgtwin.app.panels.segment_labels import unique_name
from surgtwin.app.workers import Job
from surgtwin.planning.commands import CompoundCommand, LabelEditCommand
from surgtwin.segmentation.editing import REFINE_OPERATIONS, islands, refine

__all__ = ["MAX_SPLIT", "RefineMixin"]

#: The most islands a split makes labels of.
MAX_SPLIT = 20


class RefineMixin:
    """Refinement actions of :class:`~surgtwin.app.panels.segment.SegmentPanel` (the panel
    gives ``labelmap()``, ``_run_edit``, ``session``…)."""

    def _selected_for_edit(self) -> int | None:
        """The selected label's value, or None (with a word on the status bar) when there is
        no volume or no label selected."""
        if not self._ready():
            return None
        value = self.current_value()
        if value is None:
            self._status("Select a label first")
        return value

    def refine_selected(self, operation: str, amount: float = 0.0) -> Job | None:
        """Islands, holes, smoothing or a margin on the selected label (one undo step)."""
        value = self._selected_for_edit()
        if value is None:
            return None
        lm = self.labelmap()
        label = lm.labels[value]
        title = REFINE_OPERATIONS[operation][0].format(label=label.name, amount=amount)

        def compute(_cancel):
            return refine(np.asarray(lm.array) == value, lm.geometry, operation, amount)

        return self._run_edit(title, compute, label, False, "set", self.overwriteCheck.isChecked())

    def split_selected(self) -> Job | None:
        """The selected label keeps its largest island; each other island (up to 20) becomes
        a new label, all in one undo step."""
        value = self._selected_for_edit()
        if value is None:
            return None
        plan, lm = self.session.plan, self.labelmap()

        def work(_progress, _cancel):
            return islands(np.asarray(lm.array) == value, MAX_SPLIT)

        def done(parts) -> None:
            if self.session.plan is not plan or value not in lm.labels:
                return
            if len(parts) < 2:
                self._status(f"{lm.labels[value].name} is one island")
                return
            base = lm.labels[value]
            step = f"Split {base.name} into {len(parts)} labels"
            edits = []
            try:
                for n, (box, mask) in enumerate(parts[1:], start=2):
                    taken = list(lm.names()) + list(plan.structures)
                    lab = lm.new_label(unique_name(f"{base.name} {n}", taken), base.role)
                    # only the voxels that are still the label's own move
                    mask = mask & (np.asarray(lm.array[box]) == value)
                    edit = lm.change(step, lab.value, mask, box=box, mode="add", label=lab)
                    if edit is not None:
                        edits.append(edit)
            except BaseException:
                for edit in reversed(edits):
                    lm.undo(edit)
                raise
            commands = [LabelEditCommand(plan, e) for e in edits]
            self._select_after = value
            self.session.push(CompoundCommand(plan, step, commands))

        return self.window.run_job(f"Finding the islands of {lm.labels[value].name}", work, done)
