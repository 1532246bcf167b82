// Package gitops runs what budgetgate ships for GitOps tools the way those
// tools run it, so that tests can hold it to what docs/gitops.md promises.
package gitops

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// ArgoCDHealthScript is the Argo CD health check of ServiceLevelObjectives,
// relative to the repository's root.
const ArgoCDHealthScript = "config/gitops/argocd-health-slo.lua"

// ArgoCDHealthKey is the argocd-cm key Argo CD reads it from:
// resource.customizations.health.<group>_<kind>.
const ArgoCDHealthKey = "resource.customizations.health.slo.budgetgate.dev_ServiceLevelObjective"

// Health is what a health script returns.
type Health struct {
	Status, Message string
}

// validStatuses are the health codes Argo CD accepts from a script; any
// other makes it report Unknown, "Lua returned an invalid health status".
var validStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

// RunArgoCDHealth runs a health script as Argo CD (util/lua/lua.go) runs one
// from argocd-cm: gopher-lua without the standard libraries (no
// resource.customizations.useOpenLibs), then the package, base and table
// libraries only, the object as the global obj (JSON numbers as Lua numbers),
// a 1s deadline, and the table the script returns read as {status, message}.
// Argo CD also loads a trimmed os library; the script needs none.
func RunArgoCDHealth(script string, obj map[string]any) (Health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, fmt.Errorf("opening the %s library: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return Health{}, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	h := Health{Status: lua.LVAsString(ret.RawGetString("status")), Message: lua.LVAsString(ret.RawGetString("message"))}
	if !validStatuses[h.Status] {
		return h, fmt.Errorf("the script returned health status %q, which Argo CD reports as Unknown", h.Status)
	}
	return h, nil
}

// ObjectOf turns a typed object into what Argo CD hands a script: its JSON
// as a map.
func ObjectOf(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}

// toLua converts decoded JSON as Argo CD's decodeValue does: maps to tables,
// slices to arrays (1-based), numbers to numbers, null to nil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}
