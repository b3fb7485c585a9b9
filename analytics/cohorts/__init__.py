"""Saved cohorts: behavioural and static sets of users, computed into the analytics store."""
