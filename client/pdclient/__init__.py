"""pd-analyse: a client that analyses signal files and folders with the PD service.

Modules: ``inputs`` (files to signals), ``batching`` (signals to requests under the service's
limits), ``service`` (HTTP with retries), ``store`` (the output folder, resumable), ``report``
(report.html), ``cli`` (the command). The PRPD summary and plot come from ``pdseg.prpd``, the
same functions the service uses.
"""
__version__ = "1.0.0"
