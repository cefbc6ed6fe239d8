"""The loop's decisions: a challenger judged against the champion by the policy in
service.yaml (gate:), each decision a commit; and the closed turn (loop:)."""
