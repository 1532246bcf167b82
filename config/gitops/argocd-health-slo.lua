-- Argo CD health of a budgetgate ServiceLevelObjective (slo.budgetgate.dev).
--
--   Healthy      evaluated (Ready) and not frozen
--   Degraded     frozen: releases of the workloads it selects are denied (the
--                Frozen condition's message says since when, until when and
--                why); or it cannot be evaluated (Ready=False)
--   Progressing  not evaluated yet, or evaluated without any data yet
--
-- argocd-cm runs it as resource.customizations.health.slo.budgetgate.dev_ServiceLevelObjective
-- (config/gitops/argocd-cm.yaml holds the same text). It uses Lua's base
-- library only: Argo CD runs scripts from argocd-cm without the string library
-- unless resource.customizations.useOpenLibs is set. test/gitops runs it with
-- the Lua interpreter Argo CD embeds (github.com/yuin/gopher-lua) against SLOs
-- as budgetgate writes them.
local hs = { status = "Progressing", message = "Waiting for budgetgate to evaluate the SLO" }

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

if obj.status == nil then
  return hs
end
-- A status written for an older spec says nothing about this one.
if obj.metadata.generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation) then
  return hs
end

if obj.status.freeze ~= nil and obj.status.freeze.active then
  local frozen = condition("Frozen")
  hs.status = "Degraded"
  if frozen ~= nil and frozen.status == "True" and frozen.message ~= nil then
    hs.message = frozen.message
  elseif obj.status.freeze.reason ~= nil then
    hs.message = "Releases frozen: " .. obj.status.freeze.reason
  else
    hs.message = "Releases frozen"
  end
  return hs
end

local ready = condition("Ready")
if ready == nil then
  return hs
end
if ready.status ~= "True" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
  return hs
end

local data = condition("DataAvailable")
if obj.status.errorBudget == nil and data ~= nil and data.status ~= "True" then
  hs.message = "No data yet: " .. (data.message or data.reason or "")
  return hs
end

hs.status = "Healthy"
hs.message = ready.message or "Evaluated"
return hs
