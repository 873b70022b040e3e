"""Sheets tasks: finance case families on line-item graphs, reference workbooks, prompts, and folder tasks."""

from .generator import (
    FAMILIES,
    MAX_DIFFICULTY,
    generate_task,
    reference_outputs,
    reference_plan,
    reference_workbook,
)
from .loader import load_task_folder
from .model import Perturbation, Task, TaskInput, TaskOutput

__all__ = ["FAMILIES", "MAX_DIFFICULTY", "Perturbation", "Task", "TaskInput", "TaskOutput", "generate_task",
           "load_task_folder", "reference_outputs", "reference_plan", "reference_workbook"]
