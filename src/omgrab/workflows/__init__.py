"""The button-driven workflow: states and the state machine."""

from omgrab.workflows.state_machine import StateMachine
from omgrab.workflows.states import WorkflowState

__all__ = ["StateMachine", "WorkflowState"]
