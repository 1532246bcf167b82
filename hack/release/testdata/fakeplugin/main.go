// Command fakeplugin stands in for kubectl-budgetgate in TestPluginArchives:
// a binary that builds in a second.
package main

func main() { println("fakeplugin") }
