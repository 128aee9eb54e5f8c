"""Starting a box (Orthanc + plugin behind nginx) and the simulators, for people, tests and demos."""
