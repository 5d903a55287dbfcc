"""What the benchmark scripts record about the machine they ran on."""

import os
import platform


def cpu_model():
    """The CPU model from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_description():
    """CPU model, architecture and usable cores, in one line."""
    return f"{cpu_model()} ({platform.machine()}), {usable_cores()} usable cores"


def versions(*modules):
    """Python's version and each module's ``__version__``, keyed by module name."""
    found = {"python": platform.python_version()}
    found.update((module.__name__, module.__version__) for module in modules)
    return found
