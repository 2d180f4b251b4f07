# minik: start-vm
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
    $name = 'dev-m02'
    $notes = '{"dev.minik.cluster":"dev","dev.minik.kind":"node","dev.minik.node":"dev-m02","dev.minik.role":"worker"}'
    $sourceVhd = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\boot.vhd')
    $bootDisk = ('C:\Users\Zo'+[char]0x00EB+' O''Brien\.minik\profiles\dev\nodes\dev-m02\hyperv\boot.vhdx')
    $vm = Find-MinikVM $name $notes
    if (-not $vm) {
        Stop-Minik 'MinikVMMissing' ObjectNotFound ('minik has no VM named ' + $name) $name
    }
    if ([string]$vm.State -eq 'Paused') {
        Hyper-V\Resume-VM -VM $vm
    } elseif ([string]$vm.State -ne 'Running') {
        if ([string]$vm.State -eq 'Off' -and $sourceVhd -ne '' -and (Test-Path -LiteralPath $sourceVhd)) {
            foreach ($old in @(Hyper-V\Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path -eq $bootDisk })) {
                Hyper-V\Remove-VMHardDiskDrive -VMHardDiskDrive $old
            }
            if (Test-Path -LiteralPath $bootDisk) { Remove-Item -LiteralPath $bootDisk -Force }
            Hyper-V\Convert-VHD -Path $sourceVhd -DestinationPath $bootDisk -VHDType Dynamic
            $disk = Hyper-V\Add-VMHardDiskDrive -VM $vm -Path $bootDisk -ControllerType SCSI -ControllerNumber 0 -ControllerLocation 0 -Passthru
            Hyper-V\Set-VMFirmware -VM $vm -FirstBootDevice $disk
            Remove-Item -LiteralPath $sourceVhd -Force
        }
        Hyper-V\Start-VM -VM $vm
    }
    $result = @{ name = $vm.Name; state = [string](Hyper-V\Get-VM -Id $vm.Id).State }
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

