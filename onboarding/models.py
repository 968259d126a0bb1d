# Checklist templates and checklists arrive with the onboarding feature.
