"""SLA clocks: business-time arithmetic on the policy calendar, targets, warnings and breaches."""
