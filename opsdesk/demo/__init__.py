"""The demo data set of ``manage.py seed_demo``, by stage: ``catalogue`` (what it is made
of), ``plan_shapes``/``planners``/``planners_activity`` (each customer's plan, built without
the database), ``writers`` (inserting what is missing, with history) and ``seed`` (the
run)."""
