// The sandbox ("pause") program of the bare provider's Pods: our own, no dependencies.
module workshop/tools/pause

go 1.26.0
