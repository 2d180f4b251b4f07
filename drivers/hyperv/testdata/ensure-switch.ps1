# minik: ensure-switch
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
    $switchName = 'minik-dev'
    $notes = '{"dev.minik.cluster":"dev","dev.minik.kind":"network"}'
    $hostIP = '172.30.0.1'
    $prefixLength = 16
    $created = $false
    $sw = Hyper-V\Get-VMSwitch | Where-Object { $_.Name -eq $switchName } | Select-Object -First 1
    if (-not $sw) {
        $sw = Hyper-V\New-VMSwitch -Name $switchName -SwitchType Internal -Notes $notes
        $created = $true
    } elseif ([string]$sw.SwitchType -ne 'Internal') {
        Stop-Minik 'MinikSwitchNotInternal' InvalidType ('the switch ' + $switchName + ' is ' + [string]$sw.SwitchType + ', not Internal') $switchName
    }
    $vnic = Hyper-V\Get-VMNetworkAdapter -ManagementOS | Where-Object { $_.SwitchName -eq $switchName } | Select-Object -First 1
    $adapter = $null
    if ($vnic) { $adapter = Get-NetAdapter | Where-Object { $_.DeviceID -eq $vnic.DeviceId } | Select-Object -First 1 }
    if (-not $adapter) { $adapter = Get-NetAdapter | Where-Object { $_.Name -eq ('vEthernet (' + $switchName + ')') } | Select-Object -First 1 }
    if (-not $adapter) {
        Stop-Minik 'MinikHostAdapterMissing' ObjectNotFound ('the switch ' + $switchName + ' has no host network adapter') $switchName
    }
    $have = @(Get-NetIPAddress -InterfaceIndex $adapter.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue | Where-Object { $_.IPAddress -eq $hostIP })
    if ($have.Count -eq 0) {
        New-NetIPAddress -InterfaceIndex $adapter.ifIndex -IPAddress $hostIP -PrefixLength $prefixLength | Out-Null
    }
    $result = @{ name = $sw.Name; id = [string]$sw.Id; created = $created; interfaceIndex = $adapter.ifIndex }
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

