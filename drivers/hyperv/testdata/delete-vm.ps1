# minik: delete-vm
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
    $cluster = 'dev'
    $name = 'dev-m02'
    $notes = '{"dev.minik.cluster":"dev","dev.minik.kind":"node","dev.minik.node":"dev-m02","dev.minik.role":"worker"}'
    $vmDir = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\hyperv')
    $switchName = 'minik-dev'
    $vm = Find-MinikVM $name $notes
    if ($vm) {
        if (@('Off', 'Saved') -notcontains [string]$vm.State) { Hyper-V\Stop-VM -VM $vm -TurnOff -Force }
        $disks = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | ForEach-Object { $_.Path })
        Hyper-V\Remove-VM -VM $vm -Force
        foreach ($d in $disks) {
            if ($d -and (Test-Path -LiteralPath $d)) { Remove-Item -LiteralPath $d -Force }
        }
    }
    if (Test-Path -LiteralPath $vmDir) { Remove-Item -LiteralPath $vmDir -Recurse -Force }
    $left = @(Hyper-V\Get-VM | Where-Object { Test-MinikLabels $_.Notes $cluster 'node' })
    $switchRemoved = $false
    if ($left.Count -eq 0) {
        $sw = @(Hyper-V\Get-VMSwitch | Where-Object { $_.Name -eq $switchName -and (Test-MinikLabels $_.Notes $cluster 'network') })
        foreach ($s in $sw) {
            Hyper-V\Remove-VMSwitch -VMSwitch $s -Force
            $switchRemoved = $true
        }
    }
    $result = @{ removed = [bool]$vm; nodesLeft = $left.Count; switchRemoved = $switchRemoved }
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

