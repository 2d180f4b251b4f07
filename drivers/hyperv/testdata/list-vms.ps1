# minik: list-vms
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    [Console]::OutputEncoding = [System.Text.Encoding]::UTF8
    function Stop-Minik([string]$Id, [System.Management.Automation.ErrorCategory]$Category, [string]$Message, [string]$Target) {
        throw [System.Management.Automation.ErrorRecord]::new([System.Exception]::new($Message), $Id, $Category, $Target)
    }
    if (-not (Get-Module -ListAvailable -Name Hyper-V)) {
        Stop-Minik 'MinikHyperVModuleMissing' NotInstalled 'the Hyper-V PowerShell module is not installed' 'Hyper-V'
    }
    Import-Module Hyper-V
    function Test-MinikLabels([string]$Notes, [string]$Cluster, [string]$Kind) {
        if (-not $Notes) { return $false }
        try { $l = ConvertFrom-Json -InputObject $Notes } catch { return $false }
        return ($l.'dev.minik.cluster' -ceq $Cluster) -and ($l.'dev.minik.kind' -ceq $Kind)
    }
    function Find-MinikVM([string]$Name, [string]$Notes) {
        Hyper-V\Get-VM | Where-Object { $_.Name -eq $Name -and $_.Notes -ceq $Notes } | Select-Object -First 1
    }
    $result = @(Hyper-V\Get-VM | Where-Object { $_.Notes -and $_.Notes.Contains('dev.minik.cluster') } | ForEach-Object {
        @{ name = $_.Name; id = [string]$_.Id; state = [string]$_.State; notes = $_.Notes }
    })
    ConvertTo-Json -Compress -Depth 6 -InputObject @{ result = $result }
} catch {
    $e = $_
    ConvertTo-Json -Compress -Depth 3 -InputObject @{ error = @{
        category = [string]$e.CategoryInfo.Category
        fullyQualifiedErrorId = [string]$e.FullyQualifiedErrorId
        exception = $e.Exception.GetType().FullName
        message = [string]$e.Exception.Message
        target = [string]$e.TargetObject
    } }
}

